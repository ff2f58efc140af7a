/**
 * Imported first by every command of this project (npm start, the CLI, the scripts): on Node 20 each AWS SDK client
 * prints a 9-line notice that future SDK versions will need Node 22. It is read when a client is made; a value the
 * user set is kept.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ||= 'true'
