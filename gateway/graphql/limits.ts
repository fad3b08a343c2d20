import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isListType,
  isObjectType,
  Kind,
  OperationTypeNode,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
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
  /** Most values an answer can hold: every field's value 1, a list's multiplied by its page size. */
  maxValues: number;
  /** A page's size when `first` is absent or null (PAGE_SIZE_DEFAULT). */
  pageSizeDefault: number;
  /** The largest page (PAGE_SIZE_MAX): what `first` given as a variable counts, unknown until the request runs. */
  pageSizeMax: number;
  /** Lists with a bound of their own, by `Type.field` (a ride's riders: MAX_RIDERS_PER_RIDE). */
  listBounds: Readonly<Record<string, number>>;
}

/** Depth, cost and most values of one selection set. */
interface Measure {
  depth: number;
  cost: number;
  values: number;
}

const NOTHING: Measure = { depth: 0, cost: 0, values: 0 };

/**
 * How many items a list field can return: its `first` (a literal; a variable counts as the
 * largest page), else the default page; a list without pages counts `listFactor`. A bound
 * of the list's own (MAX_RIDERS_PER_RIDE) caps it either way.
 */
function itemsOf(field: GraphQLField<unknown, unknown>, node: FieldNode, parent: GraphQLNamedType, limits: DocumentLimits): number {
  let items = limits.listFactor;
  if (field.args.some((a) => a.name === 'first')) {
    const first = node.arguments?.find((a) => a.name.value === 'first')?.value;
    if (first?.kind === Kind.INT) items = Math.min(Math.max(Number(first.value), 1), limits.pageSizeMax);
    else if (first?.kind === Kind.VARIABLE) items = limits.pageSizeMax;
    else items = limits.pageSizeDefault;
  }
  return Math.min(items, limits.listBounds[`${parent.name}.${field.name}`] ?? Infinity);
}

/**
 * Measures an operation in time linear in the document: each fragment is measured once
 * and remembered, so a fan of fragments that spread the next one twice (2^n paths) costs
 * n steps, not 2^n. Costs that overflow stay at Infinity, which is over any limit.
 */
function measurer(schema: GraphQLSchema, fragments: ReadonlyMap<string, FragmentDefinitionNode>, limits: DocumentLimits) {
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
    let values = 0;
    for (const sel of set.selections) {
      let m: Measure;
      if (sel.kind === Kind.FIELD) {
        // Introspection (__schema, __type, __typename) is answered by the gateway alone.
        if (sel.name.value.startsWith('__')) continue;
        const field = isObjectType(parent) ? parent.getFields()[sel.name.value] : undefined;
        const inner = sel.selectionSet ? measureSet(sel.selectionSet, field ? getNamedType(field.type) : undefined) : NOTHING;
        const list = field !== undefined && isListType(getNullableType(field.type));
        const factor = list ? limits.listFactor : 1;
        const items = list && parent ? itemsOf(field, sel, parent, limits) : 1;
        m = { depth: sel.selectionSet ? 1 + inner.depth : 0, cost: 1 + factor * inner.cost, values: items * (1 + inner.values) };
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        m = measureSet(sel.selectionSet, sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent);
      } else {
        m = fragmentMeasure(sel.name.value);
      }
      depth = Math.max(depth, m.depth);
      cost += m.cost;
      values += m.values;
    }
    return { depth, cost, values };
  };
  return measureSet;
}

/**
 * Validation rules (reported as GRAPHQL_VALIDATION_FAILED, like every invalid document)
 * that refuse expensive documents before any RPC: nesting deeper than `maxDepth`
 * (User → rides → riders → rides … fans out), an estimated cost above `maxCost` (the
 * fields a document can make the database produce, lists counted `listFactor` times),
 * an answer that could hold more than `maxValues` values (lists counted at the page
 * size they ask for: pages nested in pages multiply, and one such answer of tens of MB
 * held the gateway's event loop for half a second, and past RabbitMQ's message limit it
 * could not be sent at all), and more than `maxAliases` aliased fields. All are linear in
 * the document's size.
 */
export function queryLimits(limits: DocumentLimits): ValidationRule[] {
  const depthAndCost: ValidationRule = (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of context.getDocument().definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const schema = context.getSchema();
    const measure = measurer(schema, fragments, limits);
    return {
      OperationDefinition(node) {
        const root =
          node.operation === OperationTypeNode.MUTATION
            ? schema.getMutationType()
            : node.operation === OperationTypeNode.SUBSCRIPTION
              ? schema.getSubscriptionType()
              : schema.getQueryType();
        const { depth, cost, values } = measure(node.selectionSet, root);
        if (depth > limits.maxDepth) context.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${limits.maxDepth}`, { nodes: [node] }));
        if (cost > limits.maxCost) {
          const shown = Number.isFinite(cost) ? String(cost) : 'beyond counting';
          context.reportError(new GraphQLError(`query cost ${shown} exceeds the limit of ${limits.maxCost} (each field 1, lists ×${limits.listFactor})`, { nodes: [node] }));
        }
        if (values > limits.maxValues) {
          const shown = Number.isFinite(values) ? values.toLocaleString('en') : 'beyond counting';
          context.reportError(
            new GraphQLError(
              `the answer could hold ${shown} values, over the limit of ${limits.maxValues.toLocaleString('en')} (lists at their page size, \`first\`): ask for smaller pages`,
              {
                nodes: [node],
              },
            ),
          );
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
