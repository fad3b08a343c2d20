/** The areas shipped with ridedb (Bengaluru localities, as in the original RideShare data). */
export const AREAS: ReadonlyArray<{ id: number; name: string }> = [
  { id: 1, name: 'Kempegowda Bus Station' },
  { id: 2, name: 'Koramangala' },
  { id: 3, name: 'Indiranagar' },
  { id: 4, name: 'Whitefield' },
  { id: 5, name: 'Electronic City' },
  { id: 6, name: 'Jayanagar' },
  { id: 7, name: 'Malleshwaram' },
  { id: 8, name: 'Hebbal' },
  { id: 9, name: 'Banashankari' },
  { id: 10, name: 'Yelahanka' },
  { id: 11, name: 'Marathahalli' },
  { id: 12, name: 'HSR Layout' },
];
