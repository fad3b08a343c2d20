import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { isEnumType, isInputObjectType, isIntrospectionType, isObjectType, isInterfaceType, type GraphQLSchema } from 'graphql';
import { clusterEventsPubSub } from '../gateway/graphql/resolvers';
import { buildGatewaySchema, gatewaySchemaFile } from '../gateway/graphql/schema';

// No services: the schema is built from the code alone, as gateway/server.ts builds it.
const SCHEMA_FILE = path.join(__dirname, '..', 'schema.graphql');

/** Every schema element (type, field, argument, enum value) without a description, by coordinate. */
function undescribed(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const check = (coordinate: string, description: string | null | undefined) => {
    if (!description?.trim()) missing.push(coordinate);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(type)) continue;
    check(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        check(`${type.name}.${field.name}`, field.description);
        for (const arg of field.args) check(`${type.name}.${field.name}(${arg.name}:)`, arg.description);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) check(`${type.name}.${field.name}`, field.description);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
    }
  }
  return missing;
}

/** Where two texts first differ, as a line number and both lines, for the failure message. */
function firstDifference(expected: string, actual: string): string {
  const want = expected.split('\n');
  const have = actual.split('\n');
  const line = want.findIndex((l, i) => l !== have[i]);
  const at = line === -1 ? want.length : line;
  return `first difference at line ${at + 1}:\n  code:            ${want[at] ?? '(end of file)'}\n  schema.graphql:  ${have[at] ?? '(end of file)'}`;
}

describe('the GraphQL schema', () => {
  it('is what schema.graphql holds', async () => {
    const expected = await gatewaySchemaFile();
    const actual = fs.existsSync(SCHEMA_FILE) ? fs.readFileSync(SCHEMA_FILE, 'utf8') : '';
    if (actual !== expected) {
      throw new Error(`schema.graphql is not the schema the code builds: regenerate it with \`npm run schema:print\` and commit it.\n${firstDifference(expected, actual)}`);
    }
  });

  it('describes every type, field, argument and enum value', async () => {
    const schema = await buildGatewaySchema(clusterEventsPubSub(new EventEmitter()));
    expect(undescribed(schema)).toEqual([]);
  });
});
