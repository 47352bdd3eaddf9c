// The DTO → JSON schema reader lives in the platform lib (the OpenAPI document uses it too).
export { dtoSchema, JsonSchema } from '@backstop/platform';
