import path from 'node:path';
import express from 'express';

/**
 * The GraphQL explorer at `/` and at `/graphql` for browsers: GraphiQL served entirely
 * from this gateway (no CDN: it works without internet access), with subscriptions over
 * graphql-ws and example tabs preloaded.
 */
const ASSETS: Record<string, string> = {
  'react.js': 'react/umd/react.production.min.js',
  'react-dom.js': 'react-dom/umd/react-dom.production.min.js',
  'graphiql.js': 'graphiql/graphiql.min.js',
  'graphiql.css': 'graphiql/graphiql.min.css',
};

const EXAMPLE_TABS = [
  {
    query: `# Who is master, who serves reads,
# how far the log is.
query Cluster {
  cluster {
    epoch
    lastSeq
    runtime
    scalingMode
    desiredSlaves
    master { id pid appliedSeq }
    slaves { id pid appliedSeq }
  }
  workers {
    id role pid appliedSeq startedAt
  }
}`,
  },
  {
    query: `# Upcoming rides between two areas.
query Rides {
  areas { id name }
  rides(source: 1, destination: 2) { id timestamp createdBy { username } riders { username } }
}`,
  },
  {
    query: `# Writes answer with their log position in extensions.dbaas.seq.
mutation CreateUserAndRide {
  createUser(username: "asha", password: "3da541559918a808c2402bba5012f6c60b27661c") { username createdAt }
  createRide(createdBy: "asha", timestamp: "2030-05-01T08:30:00Z", source: 1, destination: 2) { id timestamp }
}`,
  },
  {
    query: `# Live rides on a route, from the log: a snapshot, then every change in seq order.
# Keep the last seq and rideId: subscribing again with afterSeq and afterRideId misses nothing.
subscription LiveRides {
  rides(source: 1, destination: 2) { type seq at rideId ride { id timestamp createdBy { username } riders { username } } rider { username } rides { id timestamp } }
}`,
  },
  {
    query: `# Live: every join, leave, election and scaling change.
subscription Events {
  clusterEvents { type at workerId pid epoch fromSlaves toSlaves reason }
}`,
  },
];

function page(): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ridedb · GraphQL</title>
  <link rel="stylesheet" href="/playground/graphiql.css">
  <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
  <div id="graphiql">Loading…</div>
  <script src="/playground/react.js"></script>
  <script src="/playground/react-dom.js"></script>
  <script src="/playground/graphiql.js"></script>
  <script type="module">
    import { createClient } from '/playground/graphql-ws/client.js';
    const wsUrl = location.origin.replace(/^http/, 'ws') + '/graphql';
    const fetcher = GraphiQL.createFetcher({ url: '/graphql', wsClient: createClient({ url: wsUrl }) });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultTabs: ${JSON.stringify(EXAMPLE_TABS)}, defaultEditorToolsVisibility: true }),
    );
  </script>
</body>
</html>
`;
}

export function playgroundRouter(): express.Router {
  const router = express.Router();
  const html = page();
  const moduleDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`));
  for (const [file, source] of Object.entries(ASSETS)) {
    const [pkg, ...rest] = source.split('/');
    const full = path.join(moduleDir(pkg), ...rest);
    router.get(`/playground/${file}`, (_req, res) => res.sendFile(full, { maxAge: '1h' }));
  }
  router.use('/playground/graphql-ws', express.static(path.join(moduleDir('graphql-ws'), 'dist'), { maxAge: '1h' }));
  const sendPage: express.RequestHandler = (req, res, next) => {
    // GraphQL over GET (?query=...) and non-browser clients go on to Apollo.
    if (req.query.query !== undefined || !req.accepts('html')) return next();
    res.type('html').send(html);
  };
  router.get('/', sendPage);
  router.get('/graphql', sendPage);
  return router;
}
