/**
 * How ridedb's node processes are launched. Memory under load is mostly allocator and
 * V8 headroom, not live data, so both roles run with bounds (bench/NOTES.md, *Memory*).
 *
 * Every launcher passes the same: the process runtime and bench:catchup (workers),
 * scripts/build-worker-image.sh and compose/worker.Dockerfile (worker images),
 * `npm start`, compose/gateway.Dockerfile and test/support/cluster.ts (the gateway).
 */

/**
 * A worker's live heap is ~20 MB, but V8's default young generation (up to 16 MB per
 * semi-space) made a catching-up worker peak near 150 MB RSS; 2 MB semi-spaces take
 * ~30 MB off that peak at no measurable CPU cost. V8 also lets the old space fill with
 * garbage to a multiple of the live heap that grows with the heap's bound (up to 4× at
 * 1 GB and more): by default ~110 MB RSS under write load and ~155 MB in a 100k
 * catch-up. A 256 MB bound holds those near 80 and 104 MB, as 96 and 128 MB did, with
 * no CPU difference alternating runs could measure (bench/NOTES.md *Memory*). It is
 * ~10× the live heap seen under load, so a worker dies of heap exhaustion (and is
 * replaced) only if answers in flight grow far past anything measured.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--max-old-space-size=256'];

/**
 * The gateway's live heap stays under ~70 MB at the request benchmark's load, but V8 let
 * it grow to ~130 MB of mostly garbage before collecting; a bounded old space holds RSS
 * down at no measurable throughput cost. 128 MB did that, but each open subscription
 * holds ~12-16 KB (graphql-ws and graphql-js state; `npm run bench:live`), so 10,000 live
 * subscribers need ~160 MB on top, and the live feed's history ~0.85 KB per change kept:
 * 512 MB serves that with room for GC. V8 sizes the heap from what is live, so the
 * higher bound costs nothing until it is needed. The trade-off: a gateway whose
 * live data outgrows it dies of heap exhaustion — the runtime or compose restarts it,
 * its workers are adopted, its subscribers resume with afterSeq — so raise it for more
 * subscribers per gateway, or add gateways.
 *
 * The young generation keeps V8's own bound, 2 × 16 MB. Held to 2 × 4 MB it took ~28 MB
 * off the request benchmark's peak on one machine (nothing on another: 211 against
 * 212 MB), but with 10,000 live subscribers the messages waiting to go out outlived the
 * small young generation and were promoted, and garbage collection became the largest
 * cost (29 % of the gateway's CPU): it delivered 18–19k of the 25k changes/s written,
 * seconds behind, where 2 × 16 MB delivers all of them (bench/NOTES.md *Live rides*).
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-old-space-size=512', '--max-semi-space-size=16'];

/**
 * glibc gives each thread that allocates its own malloc arena; node's V8 and libuv
 * threads left ~60 MB of arena fragmentation in the gateway under load. Two arenas
 * are plenty for one event loop.
 */
export const NODE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
