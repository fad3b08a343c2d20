import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, getOperationAST, getVariableValues, Kind, parse, type FragmentDefinitionNode } from 'graphql';
import type { FieldSelection } from '../../schema';
import { planSelection } from '../../gateway/graphql/selectionPlanner';
import type { PageSettings } from '../../gateway/pages';

/** The gateway's schema as clients see it (schema.graphql), for planning without a gateway. */
export const schema = buildSchema(fs.readFileSync(path.join(__dirname, '..', '..', 'schema.graphql'), 'utf8'));

/** What the compiled path plans for a query (null: it declines), variables coerced as it coerces them. */
export function plan(query: string, variables: Record<string, unknown>, pages: PageSettings): FieldSelection[] | null {
  const document = parse(query);
  const operation = getOperationAST(document)!;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables);
  if (coerced.errors) throw coerced.errors[0];
  return planSelection(operation, schema.getQueryType()!, fragments, coerced.coerced, pages);
}
