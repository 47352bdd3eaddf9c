import { join, relative } from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import ts from 'typescript';
import type { JsonSchema } from './command-schemas';

export interface EventSchema {
  readonly type: string;
  /** The capability folder that declares it: libs/<capability>/domain. */
  readonly capability: string;
  readonly declaredIn: string;
  readonly payload: JsonSchema;
}

/**
 * Event payload schemas read from the domain code itself with the TypeScript compiler: every
 * exported `type XxxEvent = DomainEvent<'Type', {...}> | ...` in libs/<capability>/domain. A field
 * added to an event changes the published schema; nothing is written twice.
 */
export function eventSchemas(root: string): EventSchema[] {
  const files = domainFiles(root);
  const program = ts.createProgram(files, { strict: true, target: ts.ScriptTarget.ES2022, baseUrl: root, paths: readPaths(root), skipLibCheck: true, noEmit: true, experimentalDecorators: true });
  const checker = program.getTypeChecker();
  const out = new Map<string, EventSchema>();
  for (const file of files) {
    const source = program.getSourceFile(file);
    if (!source) continue;
    ts.forEachChild(source, (node) => {
      if (!ts.isTypeAliasDeclaration(node) || !/Event$/.test(node.name.text)) return;
      if (!node.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) return;
      // Only `DomainEvent<'Type', Data>` written in this alias declares an event here; unions that
      // merely combine other files' event types (the ledger's) are not declarations.
      const visit = (typeNode: ts.Node): void => {
        if (ts.isTypeReferenceNode(typeNode) && typeNode.typeName.getText(source) === 'DomainEvent' && typeNode.typeArguments?.length === 2) {
          const [typeArg, dataArg] = typeNode.typeArguments;
          if (ts.isLiteralTypeNode(typeArg) && ts.isStringLiteral(typeArg.literal)) {
            const capability = relative(join(root, 'libs'), file).split('/')[0];
            out.set(typeArg.literal.text, {
              type: typeArg.literal.text,
              capability,
              declaredIn: relative(root, file),
              payload: toSchema(checker, checker.getTypeFromTypeNode(dataArg), node, 0),
            });
          }
          return;
        }
        ts.forEachChild(typeNode, visit);
      };
      visit(node.type);
    });
  }
  return [...out.values()].sort((a, b) => a.type.localeCompare(b.type));
}

/** The JSON schema of one exported interface or type alias (e.g. CommandReply, DeadLetter). */
export function namedTypeSchema(root: string, file: string, name: string): JsonSchema {
  const path = join(root, file);
  const program = ts.createProgram([path], { strict: true, target: ts.ScriptTarget.ES2022, baseUrl: root, paths: readPaths(root), skipLibCheck: true, noEmit: true, experimentalDecorators: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(path);
  let found: JsonSchema | undefined;
  if (source) {
    ts.forEachChild(source, (node) => {
      if ((ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) && node.name.text === name) {
        found = toSchema(checker, checker.getTypeAtLocation(node.name), node, 0);
      }
    });
  }
  if (!found) throw new Error(`no exported type ${name} in ${file}`);
  return found;
}

function toSchema(checker: ts.TypeChecker, type: ts.Type, at: ts.Node, depth: number): JsonSchema {
  if (depth > 6) return {};
  if (type.flags & ts.TypeFlags.String) return { type: 'string' };
  if (type.flags & ts.TypeFlags.Number) return { type: 'number' };
  if (type.flags & ts.TypeFlags.Boolean) return { type: 'boolean' };
  if (type.flags & ts.TypeFlags.BigInt) return { type: 'string', description: 'integer in minor units' };
  if (type.isStringLiteral()) return { type: 'string', enum: [type.value] };
  if (type.isNumberLiteral()) return { type: 'number', enum: [type.value] };
  if (type.isUnion()) {
    const parts = type.types.filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
    if (parts.every((t) => t.isStringLiteral())) return { type: 'string', enum: parts.map((t) => (t as ts.StringLiteralType).value).sort() };
    if (parts.every((t) => t.flags & ts.TypeFlags.BooleanLiteral)) return { type: 'boolean' };
    if (parts.length === 1) return toSchema(checker, parts[0], at, depth);
    return { oneOf: parts.map((t) => toSchema(checker, t, at, depth + 1)) };
  }
  if (checker.isArrayType(type)) {
    const [element] = checker.getTypeArguments(type as ts.TypeReference);
    return { type: 'array', items: element ? toSchema(checker, element, at, depth + 1) : {} };
  }
  const index = type.getStringIndexType();
  if (index && type.getProperties().length === 0) return { type: 'object', additionalProperties: toSchema(checker, index, at, depth + 1) };
  if (type.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const prop of type.getProperties()) {
      const propType = checker.getTypeOfSymbolAtLocation(prop, at);
      properties[prop.name] = toSchema(checker, propType, at, depth + 1);
      if (!(prop.flags & ts.SymbolFlags.Optional)) required.push(prop.name);
    }
    return { type: 'object', properties, required };
  }
  return {};
}

function domainFiles(root: string): string[] {
  const libs = join(root, 'libs');
  const out: string[] = [];
  for (const capability of readdirSync(libs)) {
    const dir = join(libs, capability, 'domain', 'src');
    if (!safeIsDir(dir)) continue;
    walk(dir, out);
  }
  return out.sort();
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (safeIsDir(path)) walk(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.spec.ts')) out.push(path);
  }
}

function safeIsDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function readPaths(root: string): Record<string, string[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(join(root, 'tsconfig.base.json')) as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions.paths;
}
