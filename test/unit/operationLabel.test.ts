import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, getOperationAST, parse } from 'graphql';
import { operationLabel } from '../../gateway/requestAccounting';

const schema = buildSchema(fs.readFileSync(path.join(__dirname, '..', '..', 'schema.graphql'), 'utf8'));
const label = (query: string) => operationLabel(getOperationAST(parse(query))!, schema);

describe('the operation label of the request metrics', () => {
  it('names the root field, from the schema only', () => {
    expect(label('{ rideCount }')).toBe('rideCount');
    expect(label('{ a: rideCount b: rideCount __typename }')).toBe('rideCount');
    expect(label('mutation { createRide(createdBy: "a", timestamp: "2030-01-01T00:00:00Z", source: 1, destination: 2) { id } }')).toBe('createRide');
    expect(label('{ rideCount users { username } }')).toBe('multiple');
  });

  it('never carries client text, however the document is built', () => {
    expect(label(`{ ${'rideCount '.repeat(1000)}}`)).toBe('rideCount');
    expect(label('query Q { ...F } fragment F on Query { rideCount }')).toBe('other');
    expect(label('{ notAField_made_up_by_a_client }')).toBe('other');
    expect(label('{ __proto__ }')).toBe('other');
  });
});
