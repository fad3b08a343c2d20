import { GraphQLError, Kind, type ASTVisitor, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';

/**
 * Validation rules (reported as GRAPHQL_VALIDATION_FAILED, like every invalid document) that refuse expensive documents before any RPC: nesting deeper than
 * `maxDepth` (User → rides → riders → rides … fans out one RPC per user) and more than
 * `maxAliases` aliased fields (the same expensive field asked for many times).
 */
export function queryLimits(maxDepth: number, maxAliases: number): ValidationRule[] {
  const depthLimit: ValidationRule = (context: ValidationContext): ASTVisitor => {
    const fragments = new Map(context.getDocument().definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
    const depthOf = (set: SelectionSetNode | undefined, seen: Set<string>): number => {
      if (!set) return 0;
      let deepest = 0;
      for (const sel of set.selections) {
        // Introspection (__schema, __type) is deep by nature and costs no RPC: not counted.
        if (sel.kind === Kind.FIELD) {
          if (!sel.name.value.startsWith('__')) deepest = Math.max(deepest, sel.selectionSet ? 1 + depthOf(sel.selectionSet, seen) : 0);
        }
        else if (sel.kind === Kind.INLINE_FRAGMENT) deepest = Math.max(deepest, depthOf(sel.selectionSet, seen));
        else if (!seen.has(sel.name.value)) {
          const fragment = fragments.get(sel.name.value);
          deepest = Math.max(deepest, depthOf(fragment?.selectionSet, new Set([...seen, sel.name.value])));
        }
      }
      return deepest;
    };
    return {
      OperationDefinition(node) {
        const depth = depthOf(node.selectionSet, new Set());
        if (depth > maxDepth) context.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${maxDepth}`, { nodes: [node] }));
      },
    };
  };
  const aliasLimit: ValidationRule = (context: ValidationContext): ASTVisitor => {
    let aliases = 0;
    return {
      Field(node) {
        if (node.alias && ++aliases === maxAliases + 1) {
          context.reportError(new GraphQLError(`more than ${maxAliases} aliased fields`, { nodes: [node] }));
        }
      },
    };
  };
  return [depthLimit, aliasLimit];
}
