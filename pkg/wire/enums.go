package wire

// Short names of the enum values that both sides use.
const (
	DesiredRun  = DesiredState_DESIRED_STATE_RUN
	DesiredStop = DesiredState_DESIRED_STATE_STOP

	FailoverAvailability = FailoverMode_FAILOVER_MODE_AVAILABILITY
	FailoverFenced       = FailoverMode_FAILOVER_MODE_FENCED

	InstancePending  = InstanceState_INSTANCE_STATE_PENDING
	InstanceStarting = InstanceState_INSTANCE_STATE_STARTING
	InstanceRunning  = InstanceState_INSTANCE_STATE_RUNNING
	InstanceStopping = InstanceState_INSTANCE_STATE_STOPPING
	InstanceStopped  = InstanceState_INSTANCE_STATE_STOPPED
	InstanceFailed   = InstanceState_INSTANCE_STATE_FAILED
)
