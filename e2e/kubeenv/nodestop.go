package kubeenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
)

// stop removes the node's Pods through the API (the kubelet stops their
// containers and sandboxes, releasing addresses and network namespaces),
// stops the kubelet and containerd, then removes by hand whatever remains
// (all of it when the kubelet was stopped first, by StopNode): containers,
// shims, mounts, cgroups, log links, CNI results, the bridge, and what
// kubelets leave outside their root dir.
func (n *node) stop(c *Cluster) error {
	var errs []error
	ctx := context.Background()
	if n.kubelet != nil && !n.kubelet.exited() {
		if err := c.deleteNodePods(ctx, n.name); err != nil {
			errs = append(errs, err)
		}
	}
	n.kubelet.stop(10 * time.Second)
	if n.containerd != nil && !n.containerd.exited() {
		errs = append(errs, n.removeContainers(ctx))
	}
	n.containerd.stop(10 * time.Second)
	errs = append(errs, n.killShims())
	errs = append(errs, unmountUnder(n.dir))
	errs = append(errs, n.removeCgroups())
	errs = append(errs, n.removeLogLinks())
	errs = append(errs, n.removeCNIResults())
	errs = append(errs, removeKubeletLeftovers())
	if out, err := exec.Command("ip", "link", "del", n.bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("delete bridge %s: %v: %s", n.bridge, err, out))
	}
	return errors.Join(errs...)
}

// deleteNodePods cordons the node (so that controllers' replacements
// land elsewhere or nowhere), deletes the Pods bound to it (grace 1 s) and
// waits until the kubelet has confirmed every deletion.
func (c *Cluster) deleteNodePods(ctx context.Context, name string) error {
	cordon := map[string]any{"spec": map[string]any{"unschedulable": true}}
	if code, body, err := c.doType(ctx, http.MethodPatch, "/api/v1/nodes/"+name, "application/merge-patch+json", cordon); err != nil || code != http.StatusOK {
		return fmt.Errorf("cordon %s: %d %v %s", name, code, err, body)
	}
	list := "/api/v1/pods?fieldSelector=" + url.QueryEscape("spec.nodeName="+name)
	remaining := func() ([]string, error) {
		code, body, err := c.Do(ctx, http.MethodGet, list, nil)
		if err != nil || code != http.StatusOK {
			return nil, fmt.Errorf("list pods of %s: %d %v", name, code, err)
		}
		var pods struct {
			Items []struct {
				Metadata struct{ Name, Namespace string } `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &pods); err != nil {
			return nil, err
		}
		var paths []string
		for _, p := range pods.Items {
			paths = append(paths, "/api/v1/namespaces/"+p.Metadata.Namespace+"/pods/"+p.Metadata.Name)
		}
		return paths, nil
	}
	pods, err := remaining()
	if err != nil || len(pods) == 0 {
		return err
	}
	for _, p := range pods {
		_, _, _ = c.Do(ctx, http.MethodDelete, p, map[string]any{"gracePeriodSeconds": 1})
	}
	return waitFor("pods of "+name+" deleted", deadline.Scale(60*time.Second), nil, func() (bool, error) {
		left, err := remaining()
		return err == nil && len(left) == 0, err
	})
}

// removeContainers kills and deletes whatever tasks and containers the
// node's containerd still has.
func (n *node) removeContainers(ctx context.Context) error {
	out, err := n.ctr(ctx, "-n", "k8s.io", "containers", "ls", "-q")
	if err != nil {
		return fmt.Errorf("%s: list containers: %v: %s", n.name, err, out)
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		_, _ = n.ctr(ctx, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id)
		for range 50 {
			if _, err := n.ctr(ctx, "-n", "k8s.io", "tasks", "delete", id); err == nil {
				break
			} else if o, _ := n.ctr(ctx, "-n", "k8s.io", "tasks", "ls", "-q"); !strings.Contains(o, id) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if o, err := n.ctr(ctx, "-n", "k8s.io", "containers", "delete", id); err != nil {
			errs = append(errs, fmt.Errorf("%s: delete container %s: %v: %s", n.name, id, err, o))
		}
	}
	return errors.Join(errs...)
}

// killShims kills the runc shims that served this node's containerd (found
// by its socket on their command line), by PID.
func (n *node) killShims() error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") && strings.Contains(string(cmdline), "\x00"+n.sock+"\x00") {
			p, err := os.FindProcess(pid)
			if err == nil {
				_ = p.Kill()
			}
		}
	}
	return nil
}

// containerLogLinks is where every kubelet links its containers' logs
// (a fixed path), to files under its podLogsDir.
const containerLogLinks = "/var/log/containers"

// removeLogLinks removes the links to this node's logs that its kubelet
// made and did not get to remove.
func (n *node) removeLogLinks() error {
	entries, err := os.ReadDir(containerLogLinks)
	if err != nil {
		return nil // no kubelet made the directory
	}
	for _, e := range entries {
		p := filepath.Join(containerLogLinks, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, n.dir+"/") {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// cniResults is where containerd's CNI calls cache each network attachment
// (a fixed path): one file per sandbox and interface, removed by the CNI
// DEL that a Pod's deletion runs, but not when containers are killed
// without the kubelet.
const cniResults = "/var/lib/cni/results"

// removeCNIResults removes the cached attachments of this node's
// sandboxes: those of its network (whose configuration names the node's
// IPAM directory) and the loopback ones of the same sandboxes.
func (n *node) removeCNIResults() error {
	entries, err := os.ReadDir(cniResults)
	if err != nil {
		return nil // no CNI call made the directory
	}
	type cached struct {
		ContainerID string `json:"containerId"`
		Config      []byte `json:"config"`
	}
	files := map[string]cached{}
	ours := map[string]bool{}
	for _, e := range entries {
		p := filepath.Join(cniResults, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var c cached
		if json.Unmarshal(b, &c) != nil || c.ContainerID == "" {
			continue
		}
		files[p] = c
		if strings.Contains(string(c.Config), n.dir+"/") {
			ours[c.ContainerID] = true
		}
	}
	var errs []error
	for p, c := range files {
		if ours[c.ContainerID] {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// kubeletSocket is the device plugins' registration socket, a fixed path
// whatever the kubelet's root dir; each kubelet that starts replaces it.
const kubeletSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"

// kubeletDirs are the directories a kubelet (and containerd's CNI result
// cache) makes outside the node's directory, children first.
var kubeletDirs = []string{"/var/lib/kubelet/device-plugins", "/var/lib/kubelet", cniResults, "/var/lib/cni", containerLogLinks}

// removeKubeletLeftovers removes, once the node's kubelet has stopped,
// what kubelets leave outside their root dir: the device plugins' socket
// when no kubelet listens on it any more, and those of kubeletDirs that
// are empty. An empty one is removed even if it was there before: every
// kubelet makes them again when it starts, and one that holds anything
// (another kubelet's socket or links) stays.
func removeKubeletLeftovers() error {
	if conn, err := net.DialTimeout("unix", kubeletSocket, time.Second); err == nil {
		conn.Close()
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		if err := os.Remove(kubeletSocket); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", kubeletSocket, err)
		}
	}
	for _, d := range kubeletDirs {
		// ENOTEMPTY or ENOENT: not ours to remove, or gone already.
		_ = syscall.Rmdir(d)
	}
	return nil
}

// removeCgroups removes the node's cgroup root from every hierarchy,
// killing (by PID) any process still in it.
func (n *node) removeCgroups() error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, n.cgroupRoot)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first.
		for i := len(dirs) - 1; i >= 0; i-- {
			d := dirs[i]
			var err error
			for range 50 {
				if err = os.Remove(d); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				if procs, rerr := os.ReadFile(filepath.Join(d, "cgroup.procs")); rerr == nil {
					for _, f := range strings.Fields(string(procs)) {
						if pid, perr := strconv.Atoi(f); perr == nil {
							if p, ferr := os.FindProcess(pid); ferr == nil {
								_ = p.Kill()
							}
						}
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}
