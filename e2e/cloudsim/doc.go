// Package cloudsim holds cloud simulators that tests start in process:
// local HTTP servers that speak a cloud's real wire protocol closely
// enough for its official SDK, so that a provider is tested through the
// SDK it ships with, and the hub's provisioner against clouds that fail on
// demand.
//
// # EC2
//
// NewEC2 starts an EC2 endpoint on 127.0.0.1 that speaks the EC2 Query
// API (POST, form-encoded Action=...&Version=2016-11-15; XML answers in
// the namespace http://ec2.amazonaws.com/doc/2016-11-15/; errors as
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>
// with EC2's HTTP status). It implements RunInstances, DescribeInstances,
// TerminateInstances, DescribeInstanceTypes and DescribeRegions, and
// checks every request's AWS Signature Version 4 against the access keys
// it was given: an unknown key id is AuthFailure (401), a signature made
// with the wrong secret SignatureDoesNotMatch (403), as on AWS.
//
// What it keeps of EC2's behaviour, because the hub relies on it:
//   - RunInstances is idempotent by ClientToken (at most 64 ASCII
//     characters): the same token answers the same reservation, never a
//     second instance, also after the instance was terminated; the same
//     token with other parameters is IdempotentParameterMismatch (400).
//   - An instance is pending for the boot delay, then running; Terminate
//     makes it shutting-down, then terminated after the terminate delay,
//     and a terminated instance stays listed for TerminatedTTL.
//   - Only known instance types run (InvalidParameterValue otherwise); a
//     quota of live instances answers InstanceLimitExceeded.
//   - DescribeInstances takes InstanceId.N, Filter.N (tag:K, tag-key,
//     instance-state-name, instance-id, instance-type, ...) with * and ?
//     wildcards, and pages with MaxResults and NextToken.
//
// # Faults
//
// A test changes the simulator while it runs: Inject makes calls of an
// action fail with a code (for the next N calls, or until ClearFaults),
// Throttle and SetRate answer RequestLimitExceeded, SetLatency delays every
// answer, LoseAnswers performs a call and then closes the connection
// without an answer (the client sees a transport error and retries with
// the same ClientToken), SetBootDelay and SetMaxInstances change how new
// instances boot and how many may live.
//
// # Observing
//
// Calls counts the calls of every action (for "cloud API calls per
// machine"), Instances is a snapshot of every instance (id, state, tags,
// user data as decoded) for assertions.
//
// # Booting for real
//
// EC2Options.Boot is called when an instance starts booting (after the
// boot delay), with a context that ends when the instance is terminated or
// the simulator closed; Close waits for every Boot to return. Package
// cloudsim/netboot implements it with e2e/netlab: every instance becomes a
// network namespace host that runs its user data's runcmd.
package cloudsim
