package drain

import (
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		kind   Kind
		url    string // Target.URL, password included
		string string // Target.String(), redacted
	}{
		{"syslog://logs.example.com:514", KindSyslogTCP, "tcp://logs.example.com:514", "syslog://logs.example.com:514"},
		{"syslog+tcp://10.0.0.1:1514/", KindSyslogTCP, "tcp://10.0.0.1:1514", "syslog://10.0.0.1:1514"},
		{"SYSLOG+TLS://[::1]:6514", KindSyslogTLS, "tls://[::1]:6514", "syslog+tls://[::1]:6514"},
		{"loki+http://loki:3100", KindLoki, "http://loki:3100/loki/api/v1/push", "loki+http://loki:3100/loki/api/v1/push"},
		{"loki+https://grafana.example.com/", KindLoki, "https://grafana.example.com/loki/api/v1/push", "loki+https://grafana.example.com/loki/api/v1/push"},
		{"loki+https://u:p%2Fw@loki.example.com/api/prom/push", KindLoki, "https://u:p%2Fw@loki.example.com/api/prom/push", "loki+https://u:xxxxx@loki.example.com/api/prom/push"},
		{"loki+http://only-user@loki:3100", KindLoki, "http://only-user@loki:3100/loki/api/v1/push", "loki+http://only-user@loki:3100/loki/api/v1/push"},
		{"es+http://es:9200", KindES, "http://es:9200/wharf-logs", "es+http://es:9200/wharf-logs"},
		{"es+https://elastic:changeme@es.example.com:9243/app-logs.2025", KindES, "https://elastic:changeme@es.example.com:9243/app-logs.2025", "es+https://elastic:xxxxx@es.example.com:9243/app-logs.2025"},
		{"es+http://es:9200/", KindES, "http://es:9200/wharf-logs", "es+http://es:9200/wharf-logs"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := Parse(tc.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Kind != tc.kind || got.URL.String() != tc.url || got.Raw != tc.raw {
				t.Errorf("got kind %q URL %q raw %q, want %q %q %q", got.Kind, got.URL, got.Raw, tc.kind, tc.url, tc.raw)
			}
			if got.String() != tc.string {
				t.Errorf("String() = %q, want %q", got.String(), tc.string)
			}
			again, err := Parse(got.String())
			if err != nil || again.String() != got.String() || again.Kind != got.Kind {
				t.Errorf("Parse(String()) = %v, %v", again, err)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string // fragment of the error
	}{
		{"", "empty"},
		{"   ", "empty"},
		{" syslog://h:514", "leading or trailing spaces"},
		{"syslog://" + strings.Repeat("a", 2040) + ":514", "limit is 2048"},
		{"http://loki:3100", `scheme "http" is not supported (accepted: syslog, syslog+tcp, syslog+tls, loki+http, loki+https, es+http, es+https)`},
		{"udp://h:514", `scheme "udp"`},
		{"loki://h:3100", `scheme "loki"`},
		{"logs.example.com:514", "is not supported"},
		{"/var/log/app", "no scheme"},
		{"syslog:h:514", "form syslog://host:port"},
		{"syslog://:514", "no host"},
		{"loki+http:///push", "no host"},
		{"syslog://h", "needs a port"},
		{"syslog://h:", "needs a port"},
		{"syslog://h:0", `port "0"`},
		{"syslog://h:70000", `port "70000"`},
		{"syslog://h:abc", "malformed"},
		{"syslog://h:514?tls=1", "query string"},
		{"loki+http://h?", "query string"},
		{"loki+http://h/#x", "fragment"},
		{"es+http://h#", "fragment"},
		{"syslog://u:pw@h:514", "must not contain a user or password"},
		{"syslog://h:514/path", "must not have a path"},
		{"syslog://h%20x:514", "malformed"},
		{"syslog://h$x:514", "not a host name"},
		{"syslog://[::1%25eth0:514", "malformed"},
		{"syslog://[1.2.3.4]:514", "malformed"},
		{"es+http://es:9200/Logs", "lowercase"},
		{"es+http://es:9200/_logs", "must not start with"},
		{"es+http://es:9200/-logs", "must not start with"},
		{"es+http://es:9200/+logs", "must not start with"},
		{"es+http://es:9200/.", `must not be "."`},
		{"es+http://es:9200/..", `must not be ".."`},
		{"es+http://es:9200/a/b", `must not contain "/"`},
		{"es+http://es:9200/a*b", `must not contain "*"`},
		{"es+http://es:9200/a%20b", `must not contain " "`},
		{"es+http://es:9200/a,b", `must not contain ","`},
		{"es+http://es:9200/a%22b", `must not contain "\""`},
		{"es+http://es:9200/a:b", `must not contain ":"`},
		{"es+http://es:9200/a%FFb", "valid UTF-8"},
		{"es+http://es:9200/" + strings.Repeat("a", 256), "limit is 255"},
		{"loki+https://user:pa/ss@h", "percent-encode"},
		{"loki+https://user:pa?ss@h", "percent-encode"},
		{"loki+https://user:pass@h\n", "spaces"},
		{"loki+https://user:pass@h\x7f", "malformed"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := Parse(tc.raw)
			if err == nil {
				t.Fatalf("Parse accepted it as %v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestParseErrorsHidePasswords feeds Parse broken URLs whose userinfo holds
// a password and checks that no error repeats it.
func TestParseErrorsHidePasswords(t *testing.T) {
	for _, raw := range []string{
		"syslog://user:sekrit@h:514",
		"loki+https://user:sekrit@h:99999",
		"loki+https://user:sekrit/x@h",
		"loki+https://user:sek#rit@h",
		"loki+https://user:sek?rit@h",
		"loki+https://user:sekrit@h/?q",
		"es+https://user:sekrit@h/BAD",
		"es+https://user:sek rit@h",
		"es+https://user:sek%zzrit@h",
		"loki+https://user:sekrit@ho$t",
		"loki+https://user:sek\x01rit@h",
		"ftp://user:sekrit@h",
	} {
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(%q) accepted it", raw)
			continue
		}
		for _, part := range []string{"sekrit", "sek", "rit"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("Parse(%q) error %q shows the password", raw, err)
				break
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"syslog://h:514", "syslog+tls://[::1]:6514", "syslog+tcp://1.2.3.4:1",
		"loki+https://u:p@h/x", "loki+http://h", "es+http://h:9200/idx", "es+https://u:p%40@h",
		"es+http://h/%25", "loki+http://h/a%2Fb", "syslog://[fe80::1%25eth0]:514", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Parse(raw)
		if err != nil {
			return
		}
		if got.URL == nil || got.Raw != raw {
			t.Fatalf("Parse(%q) = %+v", raw, got)
		}
		s := got.String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its String() %q is refused: %v", raw, s, err)
		}
		if again.Kind != got.Kind || again.String() != s {
			t.Fatalf("round trip of %q: %q (%s) then %q (%s)", raw, s, got.Kind, again.String(), again.Kind)
		}
		if _, ok := got.URL.User.Password(); ok {
			if pw, _ := again.URL.User.Password(); pw != "xxxxx" {
				t.Fatalf("String() %q does not redact the password", s)
			}
		}
	})
}
