import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the operations in src/lib/graphql, generated from the exported schema.
// Run `npm run codegen` after changing either; `npm run codegen:check` fails when the output is stale.
const config: CodegenConfig = {
	schema: '../schema/schema.graphql',
	documents: ['src/lib/graphql/*.graphql'],
	ignoreNoDocuments: false,
	generates: {
		'src/lib/gql/': {
			preset: 'client',
			presetConfig: { fragmentMasking: false, gqlTagName: 'gql' },
			config: {
				useTypeImports: true,
				enumsAsTypes: true,
				scalars: { DateTime: 'string', JSON: 'unknown' },
				skipTypename: false
			}
		}
	}
};

export default config;
