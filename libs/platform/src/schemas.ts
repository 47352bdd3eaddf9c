import { getMetadataStorage } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';

export type JsonSchema = Record<string, unknown>;

/**
 * A JSON schema of a class-validator DTO (AsyncAPI and OpenAPI both use it), read from the decorators themselves, so the published
 * command schemas are the rules the service enforces.
 */
export function dtoSchema(target: new () => object): JsonSchema {
  const metadatas = getMetadataStorage().getTargetValidationMetadatas(target, '', true, false) as ValidationMetadata[];
  const byProperty = new Map<string, ValidationMetadata[]>();
  for (const m of metadatas) {
    if (m.propertyName === undefined) continue;
    byProperty.set(m.propertyName, [...(byProperty.get(m.propertyName) ?? []), m]);
  }
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, rules] of [...byProperty.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const schema: JsonSchema = {};
    const descriptions: string[] = [];
    let optional = false;
    for (const rule of rules) {
      const kind = rule.name ?? rule.type;
      const constraints = (rule.constraints ?? []) as unknown[];
      switch (kind) {
        case 'isOptional':
        case 'conditionalValidation':
          optional = true;
          break;
        case 'isIn':
          schema.type = 'string';
          schema.enum = constraints[0];
          break;
        case 'matches':
          schema.type = 'string';
          schema.pattern = String(constraints[0]).replace(/^\/|\/[a-z]*$/g, '');
          // An instant on the wire: say so in the standard way too, so generated clients get a date type.
          if (typeof rule.message === 'string' && /ISO-8601/.test(rule.message)) schema.format = 'date-time';
          break;
        case 'isUuid':
          schema.type = 'string';
          schema.format = 'uuid';
          break;
        case 'isString':
        case 'isNotEmpty':
        case 'maxLength':
          schema.type = 'string';
          if (kind === 'maxLength') schema.maxLength = constraints[0];
          break;
        case 'isInt':
          schema.type = 'integer';
          break;
        case 'isObject':
          // A map such as DeclareDefault's closeOutPrices ({ "BTC-USD": "30000" }); was documented as a string.
          schema.type = 'object';
          break;
        case 'min':
          schema.minimum = constraints[0];
          break;
        case 'max':
          schema.maximum = constraints[0];
          break;
        case 'nestedValidation': {
          const nested = nestedType(target, name);
          if (nested) Object.assign(schema, dtoSchema(nested));
          break;
        }
        case 'isDefined':
          break;
        case 'customValidation':
        default: {
          schema.type = schema.type ?? 'string';
          const message = typeof rule.message === 'string' ? rule.message.replace('$property', name) : undefined;
          descriptions.push(`${kind === 'customValidation' ? String(rule.constraintCls?.name ?? 'rule') : kind}${message ? `: ${message}` : ''}`);
        }
      }
    }
    if (descriptions.length) schema.description = descriptions.join('; ');
    properties[name] = schema;
    if (!optional) required.push(name);
  }
  return { type: 'object', additionalProperties: false, properties, required };
}

function nestedType(target: new () => object, property: string): (new () => object) | undefined {
  // class-transformer's @Type metadata names the nested DTO class.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defaultMetadataStorage } = require('class-transformer/cjs/storage') as {
    defaultMetadataStorage: { findTypeMetadata(target: unknown, property: string): { typeFunction: () => new () => object } | undefined };
  };
  return defaultMetadataStorage.findTypeMetadata(target, property)?.typeFunction();
}
