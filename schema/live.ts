import { z } from 'zod';
import { areaIdSchema, rideIdSchema, usernameSchema } from './values';

/**
 * Live data: what the log must say for a reader of it (the gateway's live feed) to know
 * which rides a write changed, beyond the arguments the replicas need. The master puts
 * these into the resolved arguments of the writes that delete rides or riders (they are
 * gone once applied, so their routes cannot be looked up afterwards); creates and joins carry
 * the whole ride in their results.
 */
/** Rides (or riders) listed in one entry at most; more ends every live subscription. */
export const MAX_LOGGED_RIDES = 10_000;

export const loggedDeleteRideSchema = z.object({
  rideId: rideIdSchema,
  source: areaIdSchema,
  destination: areaIdSchema,
  /** Whose `userRides` hear of it: the creator and the riders (at most MAX_LOGGED_RIDES; more: every subscription ends). */
  createdBy: usernameSchema.optional(),
  riders: z.array(usernameSchema).max(MAX_LOGGED_RIDES).default([]),
  more: z.boolean().default(false),
});

/** A ride as a deleting write logs it: enough to name its subscription keys. */
const loggedRide = z.object({ id: rideIdSchema, source: areaIdSchema, destination: areaIdSchema });

export const loggedDeleteUserSchema = z.object({
  username: usernameSchema,
  /**
   * The rides the user created, with their riders, whose `userRides` hear of the ride's
   * end (entries written before riders were logged have none).
   */
  rides: z.array(loggedRide.extend({ riders: z.array(usernameSchema).default([]) })).max(MAX_LOGGED_RIDES),
  /**
   * The rides of others the user had joined, which they leave (RIDE_LEFT, to the ride's
   * route, the ride, its creator, the user and its other riders), and the user as those
   * changes show them. Absent from entries written before it was logged. Each ride's other
   * riders, whose joined rides no longer list the user (their `userRides` and the read
   * cache's keys), are logged within the room the bound leaves; absent when they did not
   * fit, and from entries written before they were logged.
   */
  left: z
    .object({
      rider: z.object({ username: usernameSchema, createdAt: z.string() }),
      rides: z.array(loggedRide.extend({ createdBy: usernameSchema, riders: z.array(usernameSchema).optional() })).max(MAX_LOGGED_RIDES),
    })
    .optional(),
  /** True when the user's rides with their riders, and the rides they joined, came to more than MAX_LOGGED_RIDES rows. */
  more: z.boolean(),
});

export const RIDE_CHANGE_TYPES = ['SNAPSHOT', 'RIDE_CREATED', 'RIDE_JOINED', 'RIDE_LEFT', 'RIDE_DELETED'] as const;
export type RideChangeTypeName = (typeof RIDE_CHANGE_TYPES)[number];
