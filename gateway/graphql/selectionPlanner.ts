import {
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  GraphQLIncludeDirective,
  GraphQLError,
  GraphQLSkipDirective,
  isObjectType,
  Kind,
  OperationTypeNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLObjectType,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { isListField, listFieldArgs, MAX_KEYS_PER_OBJECT, MAX_NAME_LENGTH, MAX_SELECTION_DEPTH, PAGED_QUERY_FIELDS, queryFieldArgs, type FieldSelection } from '../../schema';
import { withFields } from '../../platform';
import { pageSize, pageSizeError, type PageSettings } from '../pages';

/** Query fields a slave answers from its database; anything else takes the resolver path. */
const DATA_QUERY_FIELDS = new Set(Object.keys(queryFieldArgs));
/** Fields answered by a read of their own on the resolver path. */
const READING_FIELDS = new Set(['ridesCreated', 'ridesJoined']);

type Variables = Record<string, unknown>;

export interface PlannedMutation {
  /** The response key, and the field's node (for error locations). */
  key: string;
  node: FieldNode;
  field: string;
  args: Record<string, unknown>;
  select?: FieldSelection[];
}

interface Planning {
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  variables: Variables;
  /** Whether `field`, at `depth` (0: a root field), can be answered from the data at hand. */
  allows(field: string, depth: number): boolean;
  /** Whether nested list fields may take arguments (pages); a mutation's record holds no pages. */
  nestedArgs: boolean;
}

/**
 * Turns a validated query into the selection a slave answers in one statement, or null
 * when it needs the resolvers (cluster fields, an argument the catalogue refuses — the
 * resolver path then reports the error exactly as for any query).
 */
export function planSelection(
  operation: OperationDefinitionNode,
  queryType: GraphQLObjectType,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Variables,
  pages: PageSettings,
): FieldSelection[] | null {
  if (operation.operation !== OperationTypeNode.QUERY) return null;
  const planning: Planning = { fragments, variables, allows: (field, depth) => depth > 0 || DATA_QUERY_FIELDS.has(field), nestedArgs: true };
  const fields = coercing(() => planFields(queryType, [operation.selectionSet], planning, 0));
  for (const f of fields ?? []) {
    if (f.field === '__typename') continue;
    const args = queryFieldArgs[f.field as keyof typeof queryFieldArgs].safeParse(f.args ?? {});
    if (!args.success) return null;
    f.args = args.data;
  }
  return fields && withPages(fields, pages, 0) ? fields : null;
}

/**
 * Fills every list's `first` with the default, in place; false (decline: the resolvers
 * report it) when a list's arguments are out of bounds.
 */
function withPages(fields: FieldSelection[], pages: PageSettings, depth: number): boolean {
  for (const f of fields) {
    const paged = depth === 0 ? (PAGED_QUERY_FIELDS as readonly string[]).includes(f.field) : isListField(f.field);
    if (paged) {
      if (depth > 0 && !listFieldArgs[f.field as keyof typeof listFieldArgs].safeParse(f.args ?? {}).success) return false;
      const first = f.args?.first;
      if (pageSizeError(first, pages)) return false;
      f.args = withFields(f.args ?? {}, { first: pageSize(first as number | null | undefined, pages) });
    }
    if (f.select && !withPages(f.select, pages, depth + 1)) return false;
  }
  return true;
}

/**
 * A mutation of one data field whose result the master's reply holds entirely, or null
 * (several root fields run one after another with GraphQL's error rules: the resolvers).
 */
export function planMutation(
  operation: OperationDefinitionNode,
  mutationType: GraphQLObjectType,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Variables,
  /** Mutations whose result is the master's record as is (no field needs another read). */
  compiled: ReadonlySet<string>,
): PlannedMutation | null {
  if (operation.operation !== OperationTypeNode.MUTATION) return null;
  const planning: Planning = { fragments, variables, allows: (field, depth) => (depth === 0 ? compiled.has(field) : !READING_FIELDS.has(field)), nestedArgs: false };
  return coercing(() => {
    const fields = planFields(mutationType, [operation.selectionSet], planning, 0);
    if (fields?.length !== 1) return null;
    const [{ key, field, args = {}, select }] = fields;
    // The field's node, for error locations (the root set is one field, maybe in a fragment).
    const node = collectFields([operation.selectionSet], planning)?.get(key)?.[0];
    if (!node) return null;
    return { key, node, field, args, ...(select && { select }) };
  });
}

/** getArgumentValues throws a GraphQLError for a value it cannot coerce; the resolver path reports it. */
function coercing<T>(plan: () => T | null): T | null {
  try {
    return plan();
  } catch (err) {
    if (err instanceof GraphQLError) return null;
    throw err;
  }
}

/**
 * The fields of `type` selected by `sets`, with coerced arguments at the root (depth 0),
 * or null to decline.
 */
function planFields(type: GraphQLObjectType, sets: readonly SelectionSetNode[], planning: Planning, depth: number): FieldSelection[] | null {
  const fields = collectFields(sets, planning);
  if (!fields?.size || fields.size > MAX_KEYS_PER_OBJECT) return null;
  const out: FieldSelection[] = [];
  for (const [key, nodes] of fields) {
    const name = nodes[0].name.value;
    if (name === '__typename') {
      out.push({ key, field: name });
      continue;
    }
    const definition = type.getFields()[name];
    if (!definition || !planning.allows(name, depth)) return null;
    const named = getNamedType(definition.type);
    let select: FieldSelection[] | null | undefined;
    if (isObjectType(named)) {
      if (depth + 1 >= MAX_SELECTION_DEPTH) return null;
      select = planFields(
        named,
        nodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : [])),
        planning,
        depth + 1,
      );
      if (!select) return null;
    }
    // Nested arguments are pages of lists (a mutation's record holds none: the resolvers).
    if (depth > 0 && nodes.some((n) => n.arguments?.length) && !planning.nestedArgs) return null;
    const args = depth === 0 || definition.args.length ? getArgumentValues(definition, nodes[0], planning.variables) : undefined;
    out.push({ key, field: name, ...(args && { args }), ...(select && { select }) });
  }
  return out;
}

/**
 * GraphQL's CollectFields: response key → the field nodes merged under it, in document
 * order. Every data type is an object type, so a fragment valid here always applies.
 */
/** Also declines (null) a response key longer than a slave accepts. */
function collectFields(sets: readonly SelectionSetNode[], { fragments, variables }: Planning): Map<string, FieldNode[]> | null {
  const fields = new Map<string, FieldNode[]>();
  const visited = new Set<string>();
  let tooLong = false;
  const visit = (set: SelectionSetNode) => {
    for (const node of set.selections) {
      if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) continue;
      if (getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if === false) continue;
      if (node.kind === Kind.FIELD) {
        const key = node.alias?.value ?? node.name.value;
        if (key.length > MAX_NAME_LENGTH) tooLong = true;
        const list = fields.get(key);
        if (list) list.push(node);
        else fields.set(key, [node]);
      } else if (node.kind === Kind.INLINE_FRAGMENT) {
        visit(node.selectionSet);
      } else if (!visited.has(node.name.value)) {
        visited.add(node.name.value);
        const fragment = fragments.get(node.name.value);
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  for (const set of sets) visit(set);
  return tooLong ? null : fields;
}
