import express, { type NextFunction, type Request, type Response } from 'express';
import { badInput, DbaasError, type ErrorCode, type RideRecord } from '../schema';
import { type Logger } from '../platform';
import { requireAdmin } from './errors';
import { SEQ_HEADER, seqHeaderValue, type RequestAccounting } from './requestAccounting';
import type { Orchestrator } from './orchestrator';
import type { RequestContext, RideService } from './service';

/**
 * The original RideShare REST API (docs/contract.md section 3.4), over the same service layer as GraphQL:
 * the same rules, the same RPCs. Only the shapes, the status codes and the old
 * `DD-MM-YYYY:SS-MM-HH` timestamps are its own.
 */

const STATUS: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 400,
  CONFLICT: 400,
  FORBIDDEN: 403,
  UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
  // Subscriptions' own; REST never meets them.
  SNAPSHOT_REQUIRED: 409,
  SLOW_CONSUMER: 503,
};

const OLD_TIMESTAMP = /^(\d{2})-(\d{2})-(\d{4}):(\d{2})-(\d{2})-(\d{2})$/;

/** `DD-MM-YYYY:SS-MM-HH` (UTC) → ISO-8601. */
export function fromOldTimestamp(value: unknown): string {
  const m = typeof value === 'string' ? OLD_TIMESTAMP.exec(value) : null;
  if (!m) throw badInput('timestamp must be DD-MM-YYYY:SS-MM-HH');
  const [, dd, mm, yyyy, ss, mi, hh] = m.map(Number);
  // Not Date.UTC: it reads years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(yyyy, mm - 1, dd);
  date.setUTCHours(hh, mi, ss, 0);
  if (date.getUTCDate() !== dd || date.getUTCMonth() !== mm - 1 || hh > 23 || mi > 59 || ss > 59) throw badInput(`no such time: ${String(value)}`);
  return date.toISOString();
}

/** ISO-8601 → `DD-MM-YYYY:SS-MM-HH` (UTC). */
export function toOldTimestamp(iso: string): string {
  const d = new Date(iso);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCDate())}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCFullYear(), 4)}:${p(d.getUTCSeconds())}-${p(d.getUTCMinutes())}-${p(d.getUTCHours())}`;
}

function intParam(value: unknown, name: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw badInput(`${name} must be a positive integer`);
  return n;
}

function stringField(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (typeof value !== 'string') throw badInput(`${name} is required`);
  return value;
}

type Handler = (req: Request, res: Response, ctx: RequestContext) => Promise<void>;

export interface RestParts {
  service: RideService;
  orchestrator: Orchestrator;
  accounting: RequestAccounting;
  contextOf: (req: Request) => RequestContext;
  log: Logger;
}

export function restRouter({ service, orchestrator, accounting, contextOf, log }: RestParts): express.Router {
  const { counter } = accounting;
  const router = express.Router();
  router.use(express.json({ limit: '64kb' }));

  /** Routes one path; any method not listed answers 405, as the original did. */
  const route = (path: string, handlers: Partial<Record<'GET' | 'PUT' | 'POST' | 'DELETE', Handler>>, counted = true) => {
    router.all(path, (req: Request, res: Response, next: NextFunction) => {
      const handler = handlers[req.method as keyof typeof handlers];
      if (!handler) {
        res.set('Allow', Object.keys(handlers).join(', ')).status(405).json({});
        return;
      }
      accounting.restCall(counted);
      res.once('finish', () => {
        const outcome = res.statusCode < 400 ? 'ok' : String((res.locals.errorCode as string | undefined) ?? res.statusCode);
        accounting.finished('rest', `${req.method} ${path}`, outcome);
      });
      const ctx = contextOf(req);
      handler(req, res, ctx).catch(next);
    });
  };

  // The original API's lists have no pages: they answer the first PAGE_SIZE_MAX rows and
  // say when the list may go on (GraphQL's `first`/`after` walk the rest).
  const sayIfCut = (res: Response, rows: number) => {
    res.set('X-DBaaS-Page-Limit', String(service.pages.maxSize));
    if (rows >= service.pages.maxSize) res.set('X-DBaaS-Truncated', 'true');
  };

  const sendSeq = (res: Response, ctx: RequestContext) => {
    const seq = seqHeaderValue(ctx.trace);
    if (seq !== undefined) res.set(SEQ_HEADER, seq);
  };

  route('/users', {
    PUT: async (req, res, ctx) => {
      await service.createUser(ctx, stringField(req.body, 'username'), stringField(req.body, 'password'));
      sendSeq(res, ctx);
      res.status(201).json({});
    },
    GET: async (_req, res, ctx) => {
      const users = await service.users(ctx, { first: service.pages.maxSize });
      sayIfCut(res, users.length);
      if (!users.length) res.status(204).end();
      else res.status(200).json(users.map((u) => u.username));
    },
  });
  route('/users/:username', {
    DELETE: async (req, res, ctx) => {
      await service.deleteUser(ctx, String(req.params.username));
      sendSeq(res, ctx);
      res.status(200).json({});
    },
  });
  route('/rides/count', {
    GET: async (_req, res, ctx) => {
      res.status(200).json([await service.rideCount(ctx)]);
    },
  });
  route('/rides', {
    POST: async (req, res, ctx) => {
      const ride = await service.createRide(ctx, {
        createdBy: stringField(req.body, 'created_by'),
        timestamp: fromOldTimestamp((req.body as Record<string, unknown>)?.timestamp),
        source: intParam((req.body as Record<string, unknown>)?.source, 'source'),
        destination: intParam((req.body as Record<string, unknown>)?.destination, 'destination'),
      });
      sendSeq(res, ctx);
      res.status(201).json({ rideId: ride.id });
    },
    GET: async (req, res, ctx) => {
      const rides = await service.rides(ctx, intParam(req.query.source, 'source'), intParam(req.query.destination, 'destination'), true, { first: service.pages.maxSize });
      sayIfCut(res, rides.length);
      if (!rides.length) res.status(204).end();
      else res.status(200).json(rides.map((r) => ({ rideId: r.id, username: r.createdBy.username, timestamp: toOldTimestamp(r.timestamp) })));
    },
  });
  const rideDetails = (r: RideRecord) => ({
    rideId: r.id,
    created_by: r.createdBy.username,
    users: r.riders.map((u) => u.username),
    timestamp: toOldTimestamp(r.timestamp),
    source: r.source.id,
    destination: r.destination.id,
  });
  route('/rides/:rideId', {
    GET: async (req, res, ctx) => {
      const ride = await service.ride(ctx, intParam(req.params.rideId, 'rideId'));
      if (!ride) res.status(204).end();
      else res.status(200).json(rideDetails(ride));
    },
    POST: async (req, res, ctx) => {
      await service.joinRide(ctx, intParam(req.params.rideId, 'rideId'), stringField(req.body, 'username'));
      sendSeq(res, ctx);
      res.status(201).json({});
    },
    DELETE: async (req, res, ctx) => {
      await service.deleteRide(ctx, intParam(req.params.rideId, 'rideId'));
      sendSeq(res, ctx);
      res.status(200).json({});
    },
  });
  route(
    '/_count',
    {
      GET: async (_req, res) => {
        res.status(200).json([counter.count]);
      },
      DELETE: async (_req, res, ctx) => {
        requireAdmin(ctx.isAdmin);
        counter.count = 0;
        res.status(200).json({});
      },
    },
    false,
  );
  route(
    '/db/clear',
    {
      POST: async (_req, res, ctx) => {
        requireAdmin(ctx.isAdmin);
        await service.clearDatabase(ctx);
        sendSeq(res, ctx);
        res.status(200).json({});
      },
    },
    false,
  );
  route(
    '/crash/master',
    {
      POST: async (_req, res, ctx) => {
        requireAdmin(ctx.isAdmin);
        res.status(200).json([(await orchestrator.crashMaster()).pid]);
      },
    },
    false,
  );
  route(
    '/crash/slave',
    {
      POST: async (_req, res, ctx) => {
        requireAdmin(ctx.isAdmin);
        res.status(200).json([(await orchestrator.crashSlave()).pid]);
      },
    },
    false,
  );
  route(
    '/worker/list',
    {
      GET: async (_req, res) => {
        res.status(200).json(
          orchestrator
            .workers()
            .map((w) => w.pid)
            .sort((a, b) => a - b),
        );
      },
    },
    false,
  );

  // One place for failures: rule failures are 400 as in the original; never a stack trace.
  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof DbaasError) {
      res.locals.errorCode = err.code;
      res.status(STATUS[err.code]).json({ error: { code: err.code, message: err.message } });
      return;
    }
    if ((err as { type?: string }).type === 'entity.parse.failed') {
      res.status(400).json({ error: { code: 'BAD_USER_INPUT', message: 'body is not valid JSON' } });
      return;
    }
    // The body parser's and the router's refusals (too large 413, unknown encoding or
    // charset 415, an undecodable path parameter 400) are http-errors: the client's fault.
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.locals.errorCode = 'BAD_USER_INPUT';
      res.status(status).json({ error: { code: 'BAD_USER_INPUT', message: (err as Error).message } });
      return;
    }
    log.error({ err }, 'REST request failed');
    res.status(500).json({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'internal error' } });
  });
  return router;
}
