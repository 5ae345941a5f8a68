#!/bin/sh
# CI step: ask the faasconf policy service for a workflow's configuration at the load the
# release expects, and write it into the OpenFaaS stack.yml the job deploys (`faas-cli deploy`
# next). Only limits, requests, max_inflight and the scale labels change (comments and layout
# stay; a request the operator set at or below its new limit stays too); the step fails, and
# leaves stack.yml as it was, if the service is unreachable or answers with an error.
#
#   FAASCONF_ENDPOINT  the policy service, e.g. http://faasconf-policy.faasconf.svc:50052
#   WORKFLOW           the workflow, e.g. parallel
#   USERS              concurrent users to configure for
#   STACK              the stack file (default stack.yml)
#   QOS_LATENCY_MS     optional mean latency target, milliseconds (default: the workflow's)
#   REQUESTS_EQUAL_LIMITS  set to 1 to set every request to its limit
#   FAASCONF           the faasconf binary (default: faasconf on PATH)
set -eu

: "${FAASCONF_ENDPOINT:?set FAASCONF_ENDPOINT to the policy service, e.g. http://faasconf-policy.faasconf.svc:50052}"
: "${WORKFLOW:?set WORKFLOW to the workflow to configure}"
: "${USERS:?set USERS to the concurrent users to configure for}"
STACK="${STACK:-stack.yml}"
FAASCONF="${FAASCONF:-faasconf}"

if [ ! -f "$STACK" ]; then
    echo "faasconf: STACK=$STACK does not exist" >&2
    exit 1
fi
set -- recommend --endpoint "$FAASCONF_ENDPOINT" --workflow "$WORKFLOW" --users "$USERS" \
    --format openfaas --stack "$STACK"
if [ -n "${QOS_LATENCY_MS:-}" ]; then
    set -- "$@" --qos-latency-ms "$QOS_LATENCY_MS"
fi
if [ "${REQUESTS_EQUAL_LIMITS:-0}" = 1 ]; then
    set -- "$@" --requests-equal-limits
fi
if ! "$FAASCONF" "$@"; then
    echo "faasconf: no configuration for $WORKFLOW at $USERS users from $FAASCONF_ENDPOINT (see the error above); $STACK is unchanged" >&2
    exit 1
fi
echo "faasconf: $STACK configured for $WORKFLOW at $USERS users"
