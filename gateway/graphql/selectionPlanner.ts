import {
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  GraphQLIncludeDirective,
  GraphQLError,
  GraphQLSkipDirective,
  isObjectType,
  Kind,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { MAX_KEYS_PER_OBJECT, MAX_NAME_LENGTH, MAX_SELECTION_DEPTH, queryFieldArgs, type FieldSelection } from '../../schema';

/** Query fields a slave answers from its database; anything else takes the resolver path. */
const DATA_QUERY_FIELDS = new Set(Object.keys(queryFieldArgs));
/** Mutations whose result is the master's record as is (no field needs another read). */
export const COMPILED_MUTATIONS = new Set(['createUser', 'deleteUser', 'createRide', 'joinRide', 'deleteRide']);
/** Fields answered by a read of their own on the resolver path. */
const READING_FIELDS = new Set(['ridesCreated', 'ridesJoined']);

type Variables = Record<string, unknown>;

export interface PlannedMutation {
  node: FieldNode;
  field: string;
  args: Record<string, unknown>;
  select?: FieldSelection[];
}

interface Planning {
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  variables: Variables;
  /** Whether a nested field can be answered from the data at hand. */
  allowNested(field: string): boolean;
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
): FieldSelection[] | null {
  if (operation.operation !== 'query') return null;
  const planning: Planning = { fragments, variables, allowNested: () => true };
  return coercing(() => {
    const fields = collectFields([operation.selectionSet], planning);
    if (!fields?.size || fields.size > MAX_KEYS_PER_OBJECT) return null;
    const out: FieldSelection[] = [];
    for (const [key, nodes] of fields) {
      const name = nodes[0].name.value;
      if (name === '__typename') {
        out.push({ key, field: name });
        continue;
      }
      if (!DATA_QUERY_FIELDS.has(name)) return null;
      const definition = queryType.getFields()[name];
      const args = queryFieldArgs[name as keyof typeof queryFieldArgs].safeParse(getArgumentValues(definition, nodes[0], variables));
      if (!args.success) return null;
      const select = planObject(definition.type, nodes, planning, 1);
      if (select === null) return null;
      out.push({ key, field: name, args: args.data, ...(select && { select }) });
    }
    return out;
  });
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
): PlannedMutation | null {
  if (operation.operation !== 'mutation') return null;
  const planning: Planning = { fragments, variables, allowNested: (field) => !READING_FIELDS.has(field) };
  return coercing(() => {
    const fields = collectFields([operation.selectionSet], planning);
    if (fields?.size !== 1) return null;
    const [nodes] = fields.values();
    const field = nodes[0].name.value;
    if (!COMPILED_MUTATIONS.has(field)) return null;
    const definition = mutationType.getFields()[field];
    const select = planObject(definition.type, nodes, planning, 1);
    if (select === null) return null;
    return { node: nodes[0], field, args: getArgumentValues(definition, nodes[0], variables), ...(select && { select }) };
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

/** The selection inside an object-typed field (undefined for a scalar), or null to decline. */
function planObject(type: GraphQLOutputType, nodes: FieldNode[], planning: Planning, depth: number): FieldSelection[] | undefined | null {
  const named = getNamedType(type);
  if (!isObjectType(named)) return undefined;
  if (depth >= MAX_SELECTION_DEPTH) return null;
  const fields = collectFields(
    nodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : [])),
    planning,
  );
  if (!fields?.size || fields.size > MAX_KEYS_PER_OBJECT) return null;
  const out: FieldSelection[] = [];
  for (const [key, fieldNodes] of fields) {
    const name = fieldNodes[0].name.value;
    const definition = named.getFields()[name];
    if (name !== '__typename' && (!definition || !planning.allowNested(name))) return null;
    const select = definition ? planObject(definition.type, fieldNodes, planning, depth + 1) : undefined;
    if (select === null) return null;
    out.push({ key, field: name, ...(select && { select }) });
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
