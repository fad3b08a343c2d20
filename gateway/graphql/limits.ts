import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isListType,
  isObjectType,
  Kind,
  OperationTypeNode,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

export interface DocumentLimits {
  /** Deepest field nesting (introspection fields not counted). */
  maxDepth: number;
  /** Most aliased fields in one document. */
  maxAliases: number;
  /** Most estimated work: every field costs 1, a list multiplies what it holds by `listFactor`. */
  maxCost: number;
  listFactor: number;
}

/** Depth and cost of one selection set. */
interface Measure {
  depth: number;
  cost: number;
}

const NOTHING: Measure = { depth: 0, cost: 0 };

/**
 * Measures an operation in time linear in the document: each fragment is measured once
 * and remembered, so a fan of fragments that spread the next one twice (2^n paths) costs
 * n steps, not 2^n. Costs that overflow stay at Infinity, which is over any limit.
 */
function measurer(schema: GraphQLSchema, fragments: ReadonlyMap<string, FragmentDefinitionNode>, listFactor: number) {
  const memo = new Map<string, Measure>();
  const fragmentMeasure = (name: string): Measure => {
    const known = memo.get(name);
    if (known) return known;
    const fragment = fragments.get(name);
    // In progress: a cycle, which graphql-js' NoFragmentCyclesRule reports.
    memo.set(name, NOTHING);
    const type = fragment ? schema.getType(fragment.typeCondition.name.value) : undefined;
    const measure = fragment ? measureSet(fragment.selectionSet, type) : NOTHING;
    memo.set(name, measure);
    return measure;
  };
  const measureSet = (set: SelectionSetNode, parent: GraphQLNamedType | null | undefined): Measure => {
    let depth = 0;
    let cost = 0;
    for (const sel of set.selections) {
      let m: Measure;
      if (sel.kind === Kind.FIELD) {
        // Introspection (__schema, __type, __typename) is answered by the gateway alone.
        if (sel.name.value.startsWith('__')) continue;
        const field = isObjectType(parent) ? parent.getFields()[sel.name.value] : undefined;
        const inner = sel.selectionSet ? measureSet(sel.selectionSet, field ? getNamedType(field.type) : undefined) : NOTHING;
        const factor = field && isListType(getNullableType(field.type)) ? listFactor : 1;
        m = { depth: sel.selectionSet ? 1 + inner.depth : 0, cost: 1 + factor * inner.cost };
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        m = measureSet(sel.selectionSet, sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent);
      } else {
        m = fragmentMeasure(sel.name.value);
      }
      depth = Math.max(depth, m.depth);
      cost += m.cost;
    }
    return { depth, cost };
  };
  return measureSet;
}

/**
 * Validation rules (reported as GRAPHQL_VALIDATION_FAILED, like every invalid document)
 * that refuse expensive documents before any RPC: nesting deeper than `maxDepth`
 * (User → rides → riders → rides … fans out), an estimated cost above `maxCost` (the
 * fields a document can make the database produce, lists counted `listFactor` times),
 * and more than `maxAliases` aliased fields. All are linear in the document's size.
 */
export function queryLimits(limits: DocumentLimits): ValidationRule[] {
  const depthAndCost: ValidationRule = (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of context.getDocument().definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const schema = context.getSchema();
    const measure = measurer(schema, fragments, limits.listFactor);
    return {
      OperationDefinition(node) {
        const root =
          node.operation === OperationTypeNode.MUTATION
            ? schema.getMutationType()
            : node.operation === OperationTypeNode.SUBSCRIPTION
              ? schema.getSubscriptionType()
              : schema.getQueryType();
        const { depth, cost } = measure(node.selectionSet, root);
        if (depth > limits.maxDepth) context.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${limits.maxDepth}`, { nodes: [node] }));
        if (cost > limits.maxCost) {
          const shown = Number.isFinite(cost) ? String(cost) : 'beyond counting';
          context.reportError(new GraphQLError(`query cost ${shown} exceeds the limit of ${limits.maxCost} (each field 1, lists ×${limits.listFactor})`, { nodes: [node] }));
        }
      },
    };
  };
  const aliasLimit: ValidationRule = (context: ValidationContext): ASTVisitor => {
    let aliases = 0;
    return {
      Field(node) {
        if (node.alias && ++aliases === limits.maxAliases + 1) {
          context.reportError(new GraphQLError(`more than ${limits.maxAliases} aliased fields`, { nodes: [node] }));
        }
      },
    };
  };
  return [depthAndCost, aliasLimit];
}
