/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "mutation Register($email: String!, $password: String!) {\n  register(email: $email, password: $password) {\n    user {\n      id\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n    role\n  }\n}": typeof types.RegisterDocument,
    "fragment LimitsFields on Limits {\n  wallTimeMs\n  cpuTimeMs\n  memoryMiB\n  outputBytes\n  processes\n}\n\nfragment ExecutionSummary on Execution {\n  id\n  status\n  script\n  stdin\n  exitCode\n  signal\n  limitExceeded\n  error\n  outputTruncated\n  createdAt\n  startedAt\n  finishedAt\n  runtime {\n    id\n    version\n  }\n  limits {\n    ...LimitsFields\n  }\n  usage {\n    wallTimeMs\n    cpuTimeMs\n    peakMemoryKiB\n  }\n  owner {\n    email\n  }\n}\n\nquery Runtimes {\n  runtimes {\n    id\n    language\n    version\n    default\n    defaultLimits {\n      ...LimitsFields\n    }\n    maxLimits {\n      ...LimitsFields\n    }\n  }\n}\n\nquery Execution($id: ID!) {\n  execution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nquery Executions($first: Int, $after: String, $status: ExecutionStatus) {\n  executions(first: $first, after: $after, status: $status) {\n    edges {\n      cursor\n      node {\n        ...ExecutionSummary\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation SubmitExecution($input: SubmitExecutionInput!) {\n  submitExecution(input: $input) {\n    ...ExecutionSummary\n  }\n}\n\nmutation CancelExecution($id: ID!) {\n  cancelExecution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nmutation SendInput($id: ID!, $data: String!, $eof: Boolean) {\n  sendInput(id: $id, data: $data, eof: $eof)\n}\n\nsubscription ExecutionEvents($id: ID!, $afterSeq: Int) {\n  executionEvents(id: $id, afterSeq: $afterSeq) {\n    __typename\n    ... on OutputChunk {\n      lines {\n        seq\n        stream\n        text\n        partial\n      }\n    }\n    ... on StatusChange {\n      seq\n      status\n      execution {\n        ...ExecutionSummary\n      }\n    }\n  }\n}": typeof types.LimitsFieldsFragmentDoc,
};
const documents: Documents = {
    "mutation Register($email: String!, $password: String!) {\n  register(email: $email, password: $password) {\n    user {\n      id\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n    role\n  }\n}": types.RegisterDocument,
    "fragment LimitsFields on Limits {\n  wallTimeMs\n  cpuTimeMs\n  memoryMiB\n  outputBytes\n  processes\n}\n\nfragment ExecutionSummary on Execution {\n  id\n  status\n  script\n  stdin\n  exitCode\n  signal\n  limitExceeded\n  error\n  outputTruncated\n  createdAt\n  startedAt\n  finishedAt\n  runtime {\n    id\n    version\n  }\n  limits {\n    ...LimitsFields\n  }\n  usage {\n    wallTimeMs\n    cpuTimeMs\n    peakMemoryKiB\n  }\n  owner {\n    email\n  }\n}\n\nquery Runtimes {\n  runtimes {\n    id\n    language\n    version\n    default\n    defaultLimits {\n      ...LimitsFields\n    }\n    maxLimits {\n      ...LimitsFields\n    }\n  }\n}\n\nquery Execution($id: ID!) {\n  execution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nquery Executions($first: Int, $after: String, $status: ExecutionStatus) {\n  executions(first: $first, after: $after, status: $status) {\n    edges {\n      cursor\n      node {\n        ...ExecutionSummary\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation SubmitExecution($input: SubmitExecutionInput!) {\n  submitExecution(input: $input) {\n    ...ExecutionSummary\n  }\n}\n\nmutation CancelExecution($id: ID!) {\n  cancelExecution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nmutation SendInput($id: ID!, $data: String!, $eof: Boolean) {\n  sendInput(id: $id, data: $data, eof: $eof)\n}\n\nsubscription ExecutionEvents($id: ID!, $afterSeq: Int) {\n  executionEvents(id: $id, afterSeq: $afterSeq) {\n    __typename\n    ... on OutputChunk {\n      lines {\n        seq\n        stream\n        text\n        partial\n      }\n    }\n    ... on StatusChange {\n      seq\n      status\n      execution {\n        ...ExecutionSummary\n      }\n    }\n  }\n}": types.LimitsFieldsFragmentDoc,
};

/**
 * The gql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = gql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function gql(source: string): unknown;

/**
 * The gql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function gql(source: "mutation Register($email: String!, $password: String!) {\n  register(email: $email, password: $password) {\n    user {\n      id\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n    role\n  }\n}"): (typeof documents)["mutation Register($email: String!, $password: String!) {\n  register(email: $email, password: $password) {\n    user {\n      id\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n    role\n  }\n}"];
/**
 * The gql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function gql(source: "fragment LimitsFields on Limits {\n  wallTimeMs\n  cpuTimeMs\n  memoryMiB\n  outputBytes\n  processes\n}\n\nfragment ExecutionSummary on Execution {\n  id\n  status\n  script\n  stdin\n  exitCode\n  signal\n  limitExceeded\n  error\n  outputTruncated\n  createdAt\n  startedAt\n  finishedAt\n  runtime {\n    id\n    version\n  }\n  limits {\n    ...LimitsFields\n  }\n  usage {\n    wallTimeMs\n    cpuTimeMs\n    peakMemoryKiB\n  }\n  owner {\n    email\n  }\n}\n\nquery Runtimes {\n  runtimes {\n    id\n    language\n    version\n    default\n    defaultLimits {\n      ...LimitsFields\n    }\n    maxLimits {\n      ...LimitsFields\n    }\n  }\n}\n\nquery Execution($id: ID!) {\n  execution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nquery Executions($first: Int, $after: String, $status: ExecutionStatus) {\n  executions(first: $first, after: $after, status: $status) {\n    edges {\n      cursor\n      node {\n        ...ExecutionSummary\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation SubmitExecution($input: SubmitExecutionInput!) {\n  submitExecution(input: $input) {\n    ...ExecutionSummary\n  }\n}\n\nmutation CancelExecution($id: ID!) {\n  cancelExecution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nmutation SendInput($id: ID!, $data: String!, $eof: Boolean) {\n  sendInput(id: $id, data: $data, eof: $eof)\n}\n\nsubscription ExecutionEvents($id: ID!, $afterSeq: Int) {\n  executionEvents(id: $id, afterSeq: $afterSeq) {\n    __typename\n    ... on OutputChunk {\n      lines {\n        seq\n        stream\n        text\n        partial\n      }\n    }\n    ... on StatusChange {\n      seq\n      status\n      execution {\n        ...ExecutionSummary\n      }\n    }\n  }\n}"): (typeof documents)["fragment LimitsFields on Limits {\n  wallTimeMs\n  cpuTimeMs\n  memoryMiB\n  outputBytes\n  processes\n}\n\nfragment ExecutionSummary on Execution {\n  id\n  status\n  script\n  stdin\n  exitCode\n  signal\n  limitExceeded\n  error\n  outputTruncated\n  createdAt\n  startedAt\n  finishedAt\n  runtime {\n    id\n    version\n  }\n  limits {\n    ...LimitsFields\n  }\n  usage {\n    wallTimeMs\n    cpuTimeMs\n    peakMemoryKiB\n  }\n  owner {\n    email\n  }\n}\n\nquery Runtimes {\n  runtimes {\n    id\n    language\n    version\n    default\n    defaultLimits {\n      ...LimitsFields\n    }\n    maxLimits {\n      ...LimitsFields\n    }\n  }\n}\n\nquery Execution($id: ID!) {\n  execution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nquery Executions($first: Int, $after: String, $status: ExecutionStatus) {\n  executions(first: $first, after: $after, status: $status) {\n    edges {\n      cursor\n      node {\n        ...ExecutionSummary\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation SubmitExecution($input: SubmitExecutionInput!) {\n  submitExecution(input: $input) {\n    ...ExecutionSummary\n  }\n}\n\nmutation CancelExecution($id: ID!) {\n  cancelExecution(id: $id) {\n    ...ExecutionSummary\n  }\n}\n\nmutation SendInput($id: ID!, $data: String!, $eof: Boolean) {\n  sendInput(id: $id, data: $data, eof: $eof)\n}\n\nsubscription ExecutionEvents($id: ID!, $afterSeq: Int) {\n  executionEvents(id: $id, afterSeq: $afterSeq) {\n    __typename\n    ... on OutputChunk {\n      lines {\n        seq\n        stream\n        text\n        partial\n      }\n    }\n    ... on StatusChange {\n      seq\n      status\n      execution {\n        ...ExecutionSummary\n      }\n    }\n  }\n}"];

export function gql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;