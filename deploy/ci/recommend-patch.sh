#!/bin/sh
# CI step: ask the faasconf policy service for a workflow's configuration and emit one
# strategic-merge patch per function's Deployment into OUT_DIR (keep it as a job artifact for
# review); with APPLY=1 apply them with `kubectl patch`. The step fails with a clear message if
# the service is unreachable or answers with an error, and then patches nothing.
#
#   FAASCONF_ENDPOINT  the policy service, e.g. http://faasconf-policy.faasconf.svc:50052
#   WORKFLOW, USERS    the workflow and the concurrent users to configure for
#   NAMESPACE          the functions' namespace (default openfaas-fn)
#   OUT_DIR            where the patches go (default faasconf-patches)
#   APPLY              1: kubectl patch each Deployment (default 0: only emit)
#   FAASCONF, KUBECTL  the binaries (default: on PATH)
set -eu

: "${FAASCONF_ENDPOINT:?set FAASCONF_ENDPOINT to the policy service, e.g. http://faasconf-policy.faasconf.svc:50052}"
: "${WORKFLOW:?set WORKFLOW to the workflow to configure}"
: "${USERS:?set USERS to the concurrent users to configure for}"
NAMESPACE="${NAMESPACE:-openfaas-fn}"
OUT_DIR="${OUT_DIR:-faasconf-patches}"
APPLY="${APPLY:-0}"
FAASCONF="${FAASCONF:-faasconf}"
KUBECTL="${KUBECTL:-kubectl}"

if ! files=$("$FAASCONF" recommend --endpoint "$FAASCONF_ENDPOINT" --workflow "$WORKFLOW" \
    --users "$USERS" --format patch --namespace "$NAMESPACE" --out-dir "$OUT_DIR"); then
    echo "faasconf: no configuration for $WORKFLOW at $USERS users from $FAASCONF_ENDPOINT (see the error above); nothing patched" >&2
    exit 1
fi
echo "faasconf: patches for $WORKFLOW at $USERS users in $OUT_DIR"
if [ "$APPLY" = 1 ]; then
    for file in $files; do
        name=$(basename "$file" .yaml)
        "$KUBECTL" patch deployment "$name" --namespace "$NAMESPACE" --type strategic --patch-file "$file"
    done
fi
