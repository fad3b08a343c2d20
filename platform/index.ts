/**
 * What every ridedb process runs on, gateway and workers alike: configuration, logging,
 * ZooKeeper sessions and elections, the broker's topology, where dedicated storage lives.
 * Plumbing, not contract: the contract (what the two sides say to each other) is schema/.
 */
export * from './config';
export * from './logger';
export * from './zk';
export * from './election';
export * from './topology';
export * from './broker';
export * from './batchedAcks';
export * from './dockerHosts';
export * from './dedicatedStorage';
export * from './withFields';
export * from './processIdentity';
