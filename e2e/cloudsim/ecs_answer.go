package cloudsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// ECS's answers: the JSON of a success (with its RequestId) and of an
// error ({"RequestId", "HostId", "Code", "Message", "Recommend"}) with the
// HTTP status ECS gives its code.

// ecsError is an ECS error answer.
type ecsError struct {
	Status  int
	Code    string
	Message string
}

func (e *ecsError) Error() string { return e.Code + ": " + e.Message }

// ecsErrorStatus is ECS's HTTP status per error code; codes not listed
// are 400, or 404 when they end in ".NotFound".
var ecsErrorStatus = map[string]int{
	"InvalidAccessKeyId.Inactive":     http.StatusForbidden,
	"Forbidden.RAM":                   http.StatusForbidden,
	"Forbidden.AccessKeyDisabled":     http.StatusForbidden,
	"QuotaExceed.ElasticQuota":        http.StatusForbidden,
	"OperationDenied.NoStock":         http.StatusForbidden,
	"IncorrectInstanceStatus":         http.StatusForbidden,
	"InternalError":                   http.StatusInternalServerError,
	"ServiceUnavailable":              http.StatusServiceUnavailable,
	"UnsupportedHTTPMethod":           http.StatusMethodNotAllowed,
	"InvalidParameter.TooLarge":       http.StatusRequestEntityTooLarge,
	"InvalidAction.NotFound":          http.StatusNotFound,
	"InvalidAccessKeyId.NotFound":     http.StatusNotFound,
	"InvalidInstanceId.NotFound":      http.StatusNotFound,
	"InvalidRegionId.NotFound":        http.StatusNotFound,
	"InvalidImageId.NotFound":         http.StatusNotFound,
	"InvalidVSwitchId.NotFound":       http.StatusNotFound,
	"InvalidSecurityGroupId.NotFound": http.StatusNotFound,
}

// ecsMessages are ECS's words for codes a fault or a check answers
// without its own.
var ecsMessages = map[string]string{
	"Throttling":                  "Request was denied due to request throttling.",
	"Throttling.User":             "Request was denied due to user flow control.",
	"Throttling.Api":              "Request was denied due to api flow control.",
	"QuotaExceed.ElasticQuota":    "No additional quota is available for the specified ECS instance type.",
	"OperationDenied.NoStock":     "The requested resource is sold out in the specified zone; try other types of resources or other regions and zones.",
	"InternalError":               "The request processing has failed due to some unknown error, exception or failure.",
	"ServiceUnavailable":          "The request has failed due to a temporary failure of the server.",
	"Forbidden.RAM":               "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
	"InvalidAccessKeyId.NotFound": "Specified access key is not found.",
	"SignatureDoesNotMatch":       "Specified signature is not matched with our calculation.",
	"SignatureNonceUsed":          "Specified signature nonce was used already.",
	"IncorrectInstanceStatus":     "The current status of the resource does not support this operation.",
	"InvalidInstanceId.NotFound":  "The specified InstanceId does not exist.",
}

func ecsErr(code, format string, args ...any) *ecsError {
	status, ok := ecsErrorStatus[code]
	switch {
	case ok:
	case strings.HasSuffix(code, ".NotFound"):
		status = http.StatusNotFound
	default:
		status = http.StatusBadRequest
	}
	msg := fmt.Sprintf(format, args...)
	if msg == "" {
		msg = ecsMessages[code]
	}
	if msg == "" {
		msg = "Injected fault " + code + "."
	}
	return &ecsError{Status: status, Code: code, Message: msg}
}

// ecsMissing is ECS's answer to a required parameter left out.
func ecsMissing(name string) *ecsError {
	return ecsErr("MissingParameter", "The input parameter %q that is mandatory for processing this request is not supplied.", name)
}

// ecsInvalid is ECS's answer to a parameter with a value it refuses.
func ecsInvalid(code, name, value string) *ecsError {
	return ecsErr(code, "The specified parameter %q is not valid: %q.", name, truncate(value, 64))
}

// ecsResponse is an action's answer; ecsWriteJSON sets its RequestId.
type ecsResponse interface{ setRequestID(id string) }

// ecsHeader starts every answer.
type ecsHeader struct {
	RequestID string `json:"RequestId"`
}

func (h *ecsHeader) setRequestID(id string) { h.RequestID = id }

func ecsWriteJSON(w http.ResponseWriter, reqID string, resp ecsResponse) {
	resp.setRequestID(reqID)
	b, err := json.Marshal(resp)
	if err != nil {
		b = []byte(`{"RequestId":"` + reqID + `","Code":"InternalError","Message":"The answer could not be encoded."}`)
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// ecsErrorBody is ECS's error answer.
type ecsErrorBody struct {
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

func (s *ECS) writeError(w http.ResponseWriter, reqID string, e *ecsError) {
	b, err := json.Marshal(ecsErrorBody{
		RequestID: reqID, HostID: "ecs." + s.region + ".aliyuncs.com", Code: e.Code, Message: e.Message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + e.Code + "&product=Ecs",
	})
	if err != nil {
		b = []byte(`{"Code":"InternalError","Message":"The error could not be encoded."}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.Status)
	w.Write(b)
}
