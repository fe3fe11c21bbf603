package netlab

import "testing"

func TestLabIDOf(t *testing.T) {
	for name, want := range map[string]string{
		"wnl0a1b2c-a1":  "0a1b2c",
		"wnb0a1b2cd12":  "0a1b2c",
		"wnv0a1b2ch7":   "0a1b2c",
		"wnl0a1b2cx":    "", // netns needs '-'
		"wnb0a1b2c-d0":  "", // bridge needs 'd'
		"wnv0a1b2cd0":   "", // veth needs 'h'
		"wnlzzzzzz-a1":  "", // not hex
		"wnl0a1b2c":     "", // too short
		"docker0":       "",
		"eth0":          "",
		"wl0a1b2c-host": "",
	} {
		got, ok := labIDOf(name)
		if got != want || ok != (want != "") {
			t.Errorf("labIDOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := decodeState("0a1b2c", labState{pid: 42, start: "777", forward: "0"}.encode())
	if st.pid != 42 || st.start != "777" || st.forward != "0" || st.id != "0a1b2c" {
		t.Errorf("decoded %+v", st)
	}
	if st.alive() {
		t.Error("pid 42 with start time 777 counted as alive")
	}
}
