// Imported first by gateway/main.ts, before graphql loads: graphql-js runs extra
// development-mode checks on every instanceof unless NODE_ENV is 'production'
// (several percent of the gateway's CPU per request). An explicit NODE_ENV wins.
process.env.NODE_ENV ??= 'production';
export {};
