// Runs TypeScript sources directly (swc, with decorator metadata for NestJS) and resolves the
// @backstop/* path aliases from tsconfig.base.json, so `npm start` needs no build step.
process.env.SWC_NODE_PROJECT = process.env.SWC_NODE_PROJECT || require('path').join(__dirname, '..', 'tsconfig.json');
require('reflect-metadata');
require('@swc-node/register');
