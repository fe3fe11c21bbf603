// Package installer holds what a hub serves to install agents: the
// install.sh script (filled in with the hub's addresses) and the hub's own
// binary as the agent's download.
package installer

import (
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"strings"
	"text/template"
)

//go:embed install.sh
var script string

var scriptTmpl = template.Must(template.New("install.sh").Parse(script))

// Script returns install.sh for a hub reachable at hubURL whose agent
// gateways are gateways (QUIC host:port).
func Script(hubURL string, gateways []string) ([]byte, error) {
	for _, s := range append([]string{hubURL}, gateways...) {
		if strings.ContainsAny(s, "\"`$\\ \n'") {
			return nil, fmt.Errorf("address %q cannot go into a shell script", s)
		}
	}
	var b strings.Builder
	err := scriptTmpl.Execute(&b, map[string]string{"HubURL": strings.TrimRight(hubURL, "/"), "Gateways": strings.Join(gateways, ",")})
	return []byte(b.String()), err
}

// Handler serves GET /install.sh and GET /download/wharf-linux-ARCH (the
// wharf binary at binary, or this process's own when binary is "", if it
// is of that platform; gzip-compressed for a client that asks, and cut
// off when the request's context ends). gateways is called per request, with the host
// name the client used, for the current gateway addresses. A binary path
// matters where this process is not the wharf binary (a test binary that
// runs hub nodes in process).
func Handler(gateways func(requestHost string) []string, binary string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /install.sh", func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		b, err := Script("http://"+r.Host, gateways(host))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/x-shellscript")
		w.Write(b)
	})
	mux.Handle("GET /download/{file}", &download{binary: binary})
	return mux
}
