/**
 * The contract: what the gateway, the workers and the clients agree on — names, message
 * shapes, records, argument rules, the operation catalogue and the GraphQL types
 * (./graphql). Neither side imports the other; both import this.
 */
export * from './names';
export * from './errors';
export * from './messages';
export * from './records';
export * from './values';
export * from './catalogue';
export * from './selection';
export * from './areas';
export * from './logRules';
export * from './live';
