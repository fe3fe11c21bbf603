package scheduler

// Instance is one placed copy of one app version.
type Instance struct {
	ID      string
	App     AppKey
	Version int
	Host    string // host id
	CPU     int    // millicores reserved on Host
	Memory  int    // MB reserved on Host
	// Terminal is true once the instance is stopped or failed for good:
	// it holds no resources and does not count towards its app.
	Terminal bool
}
