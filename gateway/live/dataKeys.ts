/**
 * Names for what a write changes and what a reader depends on, shared by the live feed
 * (the keys subscriptions listen on) and the read cache (what each answer depends on).
 */
export const routeKey = (source: number, destination: number) => `route:${source}:${destination}`;
export const rideKey = (id: number) => `ride:${id}`;
export const userKey = (username: string) => `user:${username}`;
/** The list of users (a new user may join any page of it). */
export const USERS_KEY = 'users';
/** The number of rides. */
export const RIDE_COUNT_KEY = 'rideCount';
/** Any ride anywhere: for answers whose rides cannot be named by one route, ride or user. */
export const ANY_RIDE_KEY = 'rides:any';
