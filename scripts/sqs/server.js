// Runs the local-aws-sqs emulator on 127.0.0.1:<port> for the tests; see scripts/services.sh.
const { createSqsServer } = require("local-aws-sqs");

const port = Number(process.argv[2] || 9324);
Promise.resolve(createSqsServer({ port, hostname: "127.0.0.1", emulateQueueCreationLifecycle: false }))
  .then(() => console.log(`sqs emulator listening on 127.0.0.1:${port}`))
  .catch((err) => { console.error(err); process.exit(1); });
process.on("SIGTERM", () => process.exit(0));
