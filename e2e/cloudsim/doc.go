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
//   - Only known instance types run (InvalidParameterValue otherwise),
//     and, when EC2Options.Images is set, only its images
//     (InvalidAMIID.NotFound); a quota of live instances answers
//     InstanceLimitExceeded.
//   - DescribeInstances takes InstanceId.N, Filter.N (tag:K, tag-key,
//     instance-state-name, instance-id, instance-type, ...) with * and ?
//     wildcards, and pages with MaxResults and NextToken.
//
// # Faults
//
// Every simulator (and the vSphere front) shares one fault injection,
// Faults (see its Faults method): Fail makes the next N calls of an
// action fail with a kind of fault (FaultThrottle, FaultQuota, FaultAuth,
// FaultServer), which each simulator answers in its own cloud's words;
// FaultHang gives no answer until the client gives up; FaultLose performs
// a call and then closes the connection without an answer (the client
// sees a transport error and retries with the same ClientToken); Inject
// takes a cloud's own error code; SetRate throttles beyond a rate and
// SetLatency delays every answer. The simulators' older methods (Inject,
// Throttle, SetRate, SetLatency, LoseAnswers, ClearFaults) are kept as
// short forms of these. SetBootDelay and SetMaxInstances change how new
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
//
// # ECS
//
// NewECS starts an Alibaba Cloud ECS endpoint on 127.0.0.1 that speaks the
// RPC-style API (GET or POST, parameters in the query or a form body:
// Action, Version=2014-05-26, Format=JSON, AccessKeyId, SignatureMethod,
// SignatureVersion, SignatureNonce, Timestamp, Signature; JSON answers
// with a RequestId; errors as {"RequestId", "HostId", "Code", "Message",
// "Recommend"} with ECS's HTTP status). It verifies every signature as
// Alibaba Cloud does (HMAC-SHA1 of METHOD&%2F&percentEncode(sorted
// parameters), keyed by the secret and "&"): an unknown AccessKey id is
// InvalidAccessKeyId.NotFound (404), a wrong signature
// SignatureDoesNotMatch (400), a Timestamp 15 minutes off
// InvalidTimeStamp.Expired, a SignatureNonce used in the last 15 minutes
// SignatureNonceUsed. It implements RunInstances, DescribeInstances,
// DeleteInstance, DeleteInstances, DescribeRegions, DescribeInstanceTypes,
// DescribeSecurityGroups, DescribeImages and the VPC API's
// DescribeVSwitches (Version 2016-04-28, on the same endpoint), over a
// catalogue of vSwitches, security groups, images and instance types the
// test configures (ECSOptions).
//
// What it keeps of ECS's behaviour:
//   - RunInstances is idempotent by ClientToken (at most 64 ASCII
//     characters): the same token answers the same InstanceIdSets, never a
//     second instance, also after the instance was deleted; other
//     parameters with the same token are IdempotentParameterMismatch.
//     Tag.N (at most 20) and UserData (base64, at most 32 KiB encoded)
//     are kept; unknown images, types, vSwitches and security groups are
//     refused with ECS's codes; a quota of instances answers
//     QuotaExceed.ElasticQuota (403).
//   - An instance is Pending, then Starting, then Running after the boot
//     delay. DeleteInstance with Force makes it Stopping, and after the
//     stop delay it is deleted: it vanishes from every answer. Without
//     Force only a Stopped instance is deleted (ECS.Stop stops one).
//   - DescribeInstances takes InstanceIds (a JSON array; unknown ids are
//     left out, not an error), Tag.N.Key/Tag.N.Value and a few exact
//     filters, and pages with PageNumber/PageSize or NextToken/MaxResults.
//   - DescribeInstanceTypes answers MemorySize as the decimal GiB the
//     test gave (ECSInstanceType.MemoryGiB), verbatim.
//
// The ECS simulator has the same faults and observations as the EC2 one
// (Inject with ECS codes such as Throttling.User, OperationDenied.NoStock
// or Forbidden.RAM; Throttle, SetRate, SetLatency, LoseAnswers,
// SetBootDelay, SetStopDelay, SetMaxInstances; Calls, Instances), and
// ECSOptions.Boot is a BootFunc that sees the instance as an Instance
// (ECSInstance.Instance), so that netboot boots ECS machines as it boots
// EC2 ones.
//
// # OpenStack and vSphere
//
// NewOpenStack starts Keystone v3, Nova, Glance's and Neutron's lookups on
// one port (see OpenStack). vSphere is govmomi's own simulator (in
// process for a provider's tests; the end-to-end tests run it as a
// process of its own, the command in cloudsim/vcsim) behind a
// VSphereFront, which counts SOAP calls and breaks them with the same
// Faults; VSphereBooter boots the VMs that power on with what
// cloud-init's VMware datasource reads: guestinfo.userdata and
// guestinfo.metadata (whose instance-id and local-hostname the BootFunc
// sees as Instance.InstanceID and Hostname).
package cloudsim
