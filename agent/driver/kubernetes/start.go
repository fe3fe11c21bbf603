package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Start makes the instance's Pod exist and waits (up to StartWait) for it
// to run. A Pod that exists already is left alone (that is how a restarted
// agent adopts it); one that failed, was evicted or lost its node is
// replaced. A Pod still waiting for a node or its image when the wait
// ends is reported pending, without error.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	if spec.Image == "" {
		return driver.Status{}, driver.StartFailedError(errors.New("kubernetes: image required (an app with only a command needs an exec host)"))
	}
	ns := Namespace(spec.Tenant)
	if errs := validation.IsDNS1123Label(ns); spec.Tenant == "" || len(errs) > 0 {
		return driver.Status{}, driver.StartFailedError(fmt.Errorf("kubernetes: tenant %q makes no namespace name: %v", spec.Tenant, errs))
	}
	if errs := validation.IsDNS1123Label(spec.InstanceID); len(errs) > 0 {
		return driver.Status{}, driver.StartFailedError(fmt.Errorf("kubernetes: instance id %q makes no Pod name: %v", spec.InstanceID, errs))
	}
	unlock := d.lockInstance(spec.InstanceID)
	defer unlock()

	p := d.cached(spec.InstanceID)
	if p == nil {
		// The cache may not have seen a Pod created a moment ago.
		got, err := d.cs.CoreV1().Pods(ns).Get(ctx, spec.InstanceID, metav1.GetOptions{})
		switch {
		case err == nil:
			if h := got.Labels[LabelHost]; h != d.cfg.HostID {
				return driver.Status{}, fmt.Errorf("kubernetes: pod %s/%s belongs to host %q", ns, got.Name, h)
			}
			p = got
		case !apierrors.IsNotFound(err):
			return driver.Status{}, fmt.Errorf("kubernetes: get pod %s/%s: %w", ns, spec.InstanceID, err)
		}
	}
	if p != nil && statusOf(p, d.nodeState(p)).State == driver.StateExited {
		// Failed, evicted, orphaned or on its way out: a new Pod of the
		// same name replaces it.
		if err := d.remove(ctx, p, 0); err != nil {
			return driver.Status{}, err
		}
		p = nil
	}
	if p == nil {
		made, err := d.create(ctx, spec)
		if err != nil {
			return driver.Status{}, err
		}
		p = made
	}
	wait := d.cfg.StartWait
	if wait == 0 {
		wait = 30 * time.Second
	}
	if wait > 0 {
		p, _ = d.waitPod(ctx, spec.InstanceID, wait, func(p *corev1.Pod) bool { return running(p) || startError(p) != nil })
	} else if c := d.cached(spec.InstanceID); c != nil {
		p = c
	}
	if p == nil {
		if err := ctx.Err(); err != nil {
			return driver.Status{}, err
		}
		return driver.Status{}, fmt.Errorf("kubernetes: pod %s/%s vanished while starting", ns, spec.InstanceID)
	}
	if err := startError(p); err != nil {
		return statusOf(p, d.nodeState(p)), err
	}
	st := statusOf(p, d.nodeState(p))
	if st.State == driver.StateExited {
		return st, driver.StartFailedError(fmt.Errorf("kubernetes: pod %s/%s %s: %s %s", ns, p.Name, p.Status.Phase, p.Status.Reason, p.Status.Message))
	}
	return st, nil
}

// create makes the tenant's namespace if needed, then the Pod, and
// returns the Pod as the API server answered (when it existed already,
// as the cache has it: maybe nil).
func (d *Driver) create(ctx context.Context, spec driver.Spec) (*corev1.Pod, error) {
	pod := podFor(spec, d.cfg.HostID, d.cfg.Labels)
	for attempt := 0; ; attempt++ {
		if err := d.ensureNamespace(ctx, spec.Tenant); err != nil {
			return nil, err
		}
		made, err := d.cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		switch {
		case err == nil:
			return made, nil
		case apierrors.IsAlreadyExists(err):
			// Made a moment ago by a Start that this one did not
			// see; the cache has it soon, if not already.
			return d.cached(pod.Name), nil
		case apierrors.IsNotFound(err) && attempt == 0:
			// The namespace was deleted behind our back: make it again.
			d.mu.Lock()
			delete(d.namespaces, pod.Namespace)
			d.mu.Unlock()
			continue
		case apierrors.IsInvalid(err), apierrors.IsForbidden(err), apierrors.IsBadRequest(err):
			return nil, driver.StartFailedError(fmt.Errorf("kubernetes: create pod %s/%s: %w", pod.Namespace, pod.Name, err))
		}
		return nil, fmt.Errorf("kubernetes: create pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
}

// ensureNamespace makes the tenant's namespace, labelled wharf.tenant,
// unless it is known to exist.
func (d *Driver) ensureNamespace(ctx context.Context, tenant string) error {
	name := Namespace(tenant)
	d.mu.Lock()
	known := d.namespaces[name]
	d.mu.Unlock()
	if known {
		return nil
	}
	ns, err := d.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		ns, err = d.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{LabelTenant: tenant}}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			ns, err = d.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("kubernetes: namespace %s: %w", name, err)
	}
	if ns.Status.Phase == corev1.NamespaceTerminating {
		return fmt.Errorf("kubernetes: namespace %s is being deleted", name)
	}
	d.mu.Lock()
	d.namespaces[name] = true
	d.mu.Unlock()
	return nil
}

// startError says why a pending Pod will not start by itself: its image
// cannot be pulled, or its container cannot be made. Nil otherwise.
func startError(p *corev1.Pod) error {
	if p == nil {
		return nil
	}
	cs := containerStatus(p)
	if cs == nil || cs.State.Waiting == nil {
		return nil
	}
	w := cs.State.Waiting
	msg := fmt.Errorf("kubernetes: pod %s/%s: %s: %s", p.Namespace, p.Name, w.Reason, w.Message)
	switch w.Reason {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
		return driver.ImagePullError(msg)
	case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
		return driver.StartFailedError(msg)
	}
	return nil
}

// lockInstance serialises Starts of one instance: concurrent Starts make
// one Pod and report one start.
func (d *Driver) lockInstance(id string) func() {
	d.mu.Lock()
	l := d.starting[id]
	if l == nil {
		l = &instanceLock{}
		d.starting[id] = l
	}
	l.users++
	d.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.mu.Lock()
		if l.users--; l.users == 0 {
			delete(d.starting, id)
		}
		d.mu.Unlock()
	}
}

// instanceLock is held by the Start of one instance; users counts the
// Starts holding or waiting for it.
type instanceLock struct {
	mu    sync.Mutex
	users int
}

// Stop deletes the instance's Pod with the grace period (its kubelet
// sends SIGTERM, then SIGKILL) and waits until it is gone: at most the
// grace plus stopSlack, then it is forced. A Pod whose node cannot
// confirm (gone or not Ready), or whose container never ran, has no
// process to warn and is deleted at once. A missing instance is not an
// error.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	p := d.cached(id)
	if p == nil {
		return nil
	}
	secs := int64((grace + time.Second - 1) / time.Second)
	if !d.nodeConfirms(p) || neverRan(p) {
		secs = 0
	}
	err := d.remove(ctx, p, secs)
	if err == nil || ctx.Err() != nil || secs == 0 {
		return err
	}
	// The kubelet did not confirm in time: force it.
	return d.remove(ctx, p, 0)
}

// neverRan reports whether p's container has not run yet: the Pod is
// Pending and its kubelet reported no container running or ended.
func neverRan(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
		return false
	}
	cs := containerStatus(p)
	return cs == nil || (cs.State.Running == nil && cs.State.Terminated == nil && cs.LastTerminationState.Terminated == nil)
}

// stopSlack is how long past its grace period a deleted Pod may take to
// disappear before it is deleted by force.
const stopSlack = 30 * time.Second

// remove deletes p (this very Pod: a newer one of the same name is left
// alone) with a grace period of secs seconds and waits until it is gone.
func (d *Driver) remove(ctx context.Context, p *corev1.Pod, secs int64) error {
	uid := p.UID
	err := d.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &secs,
		Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil, apierrors.IsNotFound(err):
	case apierrors.IsConflict(err): // the UID differs: that Pod is gone already
	default:
		return fmt.Errorf("kubernetes: delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	bound := time.Duration(secs)*time.Second + stopSlack
	if secs == 0 {
		bound = stopSlack
	}
	if _, ok := d.waitPod(ctx, p.Name, bound, func(q *corev1.Pod) bool { return q == nil || q.UID != uid }); !ok {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("kubernetes: pod %s/%s still there %s after its deletion", p.Namespace, p.Name, bound)
	}
	return nil
}
