// Lint: typescript-eslint's type-checked recommendations. Formatting is Prettier's job
// (`npm run format`), so no style rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/postgraphile/**', 'bench/mercurius/**', 'bench/postgraphile5/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // Off: most async functions without an await implement a promise-returning contract
      // (Apollo's plugin hooks, WorkerRuntime, stream iterators), where async keeps a
      // synchronous throw a rejection.
      '@typescript-eslint/require-await': 'off',
      // `_`-prefixed parameters are the ones a signature requires and the body ignores.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // jest's asymmetric matchers (expect.stringMatching, …) are typed `any`.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-unsafe-assignment': 'off' } },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
);
