/**
 * `{ ...base, ...more }` for paths taken once per request or write. On Node 20's V8 an
 * object spread followed by more properties (`{ ...a, id }`) takes a slow path, ~1–3 µs
 * against ~0.1 µs for Object.assign (measured on objects like the master's resolved
 * writes; bench/NOTES.md, *Writes*). Elsewhere, spread reads better. Unlike spread,
 * Object.assign would run the `__proto__` setter for such an own key: pass only objects
 * whose keys are known (zod-parsed, coerced GraphQL arguments, JSON this process wrote).
 */
export const withFields = <A extends object, B extends object>(base: A, more: B): A & B => Object.assign({}, base, more);
