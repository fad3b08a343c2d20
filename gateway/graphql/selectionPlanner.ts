import {
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isObjectType,
  Kind,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLObjectType,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { MAX_KEYS_PER_OBJECT, queryFieldArgs, type FieldSelection } from '../../schema';

/** Query fields a slave answers from its database; anything else takes the resolver path. */
const DATA_QUERY_FIELDS = new Set(Object.keys(queryFieldArgs));

type Variables = Record<string, unknown>;

/**
 * Turns a validated query into the selection a slave answers in one statement, or null
 * when it needs the resolvers (cluster fields, a mutation, an argument the catalogue
 * refuses — the resolver path then reports the error exactly as for any query).
 */
export function planSelection(
  operation: OperationDefinitionNode,
  queryType: GraphQLObjectType,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Variables,
): FieldSelection[] | null {
  if (operation.operation !== 'query') return null;
  const collect = (sets: readonly SelectionSetNode[]) => collectFields(sets, fragments, variables);
  const plan = (type: GraphQLObjectType, sets: readonly SelectionSetNode[], root: boolean): FieldSelection[] | null => {
    const fields = collect(sets);
    if (!fields.size || fields.size > MAX_KEYS_PER_OBJECT) return null;
    const out: FieldSelection[] = [];
    for (const [key, nodes] of fields) {
      const name = nodes[0].name.value;
      if (name === '__typename') {
        out.push({ key, field: name });
        continue;
      }
      if (root && !DATA_QUERY_FIELDS.has(name)) return null;
      const definition = type.getFields()[name];
      if (!definition) return null;
      const selection: FieldSelection = { key, field: name };
      if (root) {
        const args = queryFieldArgs[name as keyof typeof queryFieldArgs].safeParse(getArgumentValues(definition, nodes[0], variables));
        if (!args.success) return null;
        selection.args = args.data;
      }
      const fieldType = getNamedType(definition.type);
      if (isObjectType(fieldType)) {
        const inner = plan(fieldType, nodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : [])), false);
        if (!inner) return null;
        selection.select = inner;
      }
      out.push(selection);
    }
    return out;
  };
  try {
    return plan(queryType, [operation.selectionSet], true);
  } catch (err) {
    // getArgumentValues throws a GraphQLError for a value it cannot coerce; the resolver
    // path reports it.
    if (err instanceof Error && err.name === 'GraphQLError') return null;
    throw err;
  }
}

/**
 * GraphQL's CollectFields: response key → the field nodes merged under it, in document
 * order. Every data type is an object type, so a fragment valid here always applies.
 */
function collectFields(sets: readonly SelectionSetNode[], fragments: ReadonlyMap<string, FragmentDefinitionNode>, variables: Variables): Map<string, FieldNode[]> {
  const fields = new Map<string, FieldNode[]>();
  const visited = new Set<string>();
  const visit = (set: SelectionSetNode) => {
    for (const node of set.selections) {
      if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) continue;
      if (getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if === false) continue;
      if (node.kind === Kind.FIELD) {
        const key = node.alias?.value ?? node.name.value;
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
  return fields;
}
