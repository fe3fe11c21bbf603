package scheduler

// Plan is what the scheduler wants changed. It is committed through Raft
// and re-checked by Check against the state it is applied to.
type Plan struct {
	// BaseIndex is the Index of the state the plan was built from.
	BaseIndex uint64
	Place     []Placement
	Stop      []StopRequest
	Pending   []Pending
}

// Placement starts one new instance on a host.
type Placement struct {
	InstanceID string
	App        AppKey
	Version    int
	Host       string // host id
	CPU        int    // millicores reserved
	Memory     int    // MB reserved
}

// StopRequest stops one instance.
type StopRequest struct {
	InstanceID string
	Reason     string // for humans: "scaled down to 3", "host \"web-1\" is down"
}

// Pending says that Count instances of App could not be placed, and why.
type Pending struct {
	App    AppKey
	Count  int
	Reason string
}
