/** What the gateway and the workers share. Neither side imports the other. */
export * from './config';
export * from './names';
export * from './dedicatedStorage';
export * from './errors';
export * from './messages';
export * from './records';
export * from './values';
export * from './operations';
export * from './selection';
export * from './migrations';
export * from './areas';
export * from './topology';
export * from './logger';
export * from './zk';
export * from './election';
