import { createSourceEventStream, execute, Kind, visit, type DocumentNode, type ExecutionArgs, type ExecutionResult, type OperationDefinitionNode } from 'graphql';

/** Events whose results are kept for other subscribers (the newest; older ones have been sent). */
const KEPT_EVENTS = 4096;

type MaybePromise<T> = T | Promise<T>;

/**
 * graphql-ws' `subscribe`, executing each event once per selection instead of once per
 * subscriber. A live change or a cluster event is one object handed to every subscriber
 * that should see it (gateway/live/liveFeed.ts, ./eventFanOut.ts), and subscribers of a
 * route mostly ask the same fields: with 10,000 subscribers graphql-js spent the
 * gateway's CPU executing the same selection on the same object fifty times over
 * (bench:live). Results are shared by (event, document, variables used below the root
 * field); the root field's own arguments (route, afterSeq) decide which events arrive,
 * not what a result holds. The execution runs with the first such subscriber's context:
 * the fields of these types read nothing per request.
 */
export function sharedSubscribe(): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const results = new Map<object, Map<string, MaybePromise<ExecutionResult>>>();
  return async (args) => {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterator(source)) return source as ExecutionResult;
    const selection = selectionKey(args);
    const run = (payload: unknown): MaybePromise<ExecutionResult> => {
      if (typeof payload !== 'object' || payload === null || payload instanceof Error || selection === null) return execute({ ...args, rootValue: payload });
      let byPayload = results.get(payload);
      if (!byPayload) {
        byPayload = new Map();
        results.set(payload, byPayload);
        if (results.size > KEPT_EVENTS) results.delete(results.keys().next().value!);
      }
      let result = byPayload.get(selection);
      if (!result) {
        const running = execute({ ...args, rootValue: payload });
        byPayload.set(selection, running);
        // Later subscribers take the result itself, without a promise hop each.
        // graphql-js turns a failed execution into a result with errors; a rejection
        // would reach every subscriber through `result` itself, so none is lost here.
        if (isPromise(running))
          running.then(
            (done) => byPayload.set(selection, done),
            () => undefined,
          );
        result = running;
      }
      return result;
    };
    return new MappedIterator(source, run);
  };
}

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | null)?.then === 'function';
}

function isAsyncIterator(value: unknown): value is AsyncIterator<unknown> {
  return typeof (value as AsyncIterator<unknown> | null)?.next === 'function';
}

/** A source iterator mapped one event at a time; return() reaches the source at once. */
class MappedIterator implements AsyncIterableIterator<ExecutionResult> {
  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly map: (payload: unknown) => MaybePromise<ExecutionResult>,
  ) {}

  // Not async, and no closure per event once the shared result is ready: each await or
  // closure here is made per subscriber and event.
  next(): Promise<IteratorResult<ExecutionResult>> {
    return this.source.next().then(this.mapEvent);
  }

  private readonly mapEvent = (event: IteratorResult<unknown>): MaybePromise<IteratorResult<ExecutionResult>> => {
    if (event.done) return { done: true, value: undefined };
    const value = this.map(event.value);
    return isPromise(value) ? value.then((v) => ({ done: false, value: v })) : { done: false, value };
  };

  async return(): Promise<IteratorResult<ExecutionResult>> {
    await this.source.return?.();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

const documentTexts = new WeakMap<DocumentNode, string>();

/**
 * What decides a result besides the event: the document and the variables used below the
 * root field. Null (no sharing) for a document that is not one operation with one root field.
 */
function selectionKey(args: ExecutionArgs): string | null {
  const operations = args.document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length !== 1 || operations[0].selectionSet.selections.length !== 1) return null;
  const root = operations[0].selectionSet.selections[0];
  if (root.kind !== Kind.FIELD) return null;
  let text = documentTexts.get(args.document);
  if (text === undefined) {
    text = JSON.stringify(args.document.loc?.source.body ?? args.document);
    documentTexts.set(args.document, text);
  }
  const below = new Set<string>();
  const fragments = args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  const field = root;
  for (const node of [field.selectionSet, ...(field.directives ?? []), ...fragments]) {
    if (node) visit(node, { Variable: (v) => void below.add(v.name.value) });
  }
  const variables = args.variableValues ?? {};
  const used = [...below].sort().map((name) => [name, variables[name]]);
  return `${text}\n${JSON.stringify(used)}`;
}
