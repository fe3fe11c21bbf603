// Package logbench measures log shipping against a peer: it writes numbered
// log files (WriteLines), receives shipped lines over TCP and checks that
// every line arrived exactly once (Sink), runs a private rsyslogd that tails
// the same files with imfile and forwards them with omfwd (RunRsyslog), and
// reads a process's CPU time (ProcCPU) so throughput can be compared per core
// as well as per second.
//
// A line written by WriteLines is "%012d " (its number) followed by filler
// letters and '\n'. The Sink takes the first run of exactly 12 digits in each
// message as its number, whatever framing or header surrounds it, so the same
// check works for raw lines and for RFC 5424 syslog.
//
// # Fair measurement
//
// RunRsyslog is given complete files: it starts rsyslogd only after they are
// written, starts the clock just before the process, and stops it when the
// sink has counted the expected lines. rsyslogd is a fresh process, so its
// CPU time at that moment (user+system of all its threads) is exactly the
// CPU it spent on this run, including its start-up (a few milliseconds:
// config parsing, module loading). The files are in the page cache for
// rsyslogd as they are for any shipper measured the same way after them.
// Throughput is the size of the files over that time (MiB/s) and over that
// CPU (MiB/s per core), whatever the wire format adds. The sink runs in the
// caller's process, on the same cores: it takes about 1 GB/s over loopback
// (sender included), so at rsyslog's ~150 MiB/s it uses roughly a tenth of
// a core.
//
// On a 2-core machine one run can be off by ±20%: interleave the shippers,
// repeat, and compare medians. Where rsyslogd runs matters too: pinned to
// one CPU (Rsyslog.CPUs) it was faster here than free on two, because its
// reader and sender threads then hand batches over within one cache.
package logbench
