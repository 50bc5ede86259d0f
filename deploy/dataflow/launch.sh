#!/usr/bin/env bash
# Build the distill-radar Flex Template and launch batch or streaming jobs on Dataflow.
#
#   deploy/dataflow/launch.sh template                      # build + push the image, write the template spec
#   deploy/dataflow/launch.sh batch  INPUT OUTPUT [FLAGS]   # one batch job
#   deploy/dataflow/launch.sh stream INPUT OUTPUT [FLAGS]   # one streaming job
#
# batch:  INPUT gs://BUCKET/logs/*.parquet (a file, folder or glob), OUTPUT gs://BUCKET/FOLDER
# stream: INPUT pubsub://projects/P/subscriptions/S, OUTPUT pubsub://projects/P/topics/T (alerts)
#
# FLAGS are distill-radar flags (--min-campaign-accounts=5, --csv,
# --link-columns=a,b, ...) or other Beam options; each becomes a template
# parameter. Worker settings come from the environment:
#
#   PROJECT, REGION, BUCKET (gs://...)          required
#   REPOSITORY      Artifact Registry Docker repository (default: distill-radar)
#   IMAGE           default: REGION-docker.pkg.dev/PROJECT/REPOSITORY/distill-radar:VERSION-beamBEAM
#   TEMPLATE        template spec (default: BUCKET/templates/distill-radar-VERSION-beamBEAM.json)
#   SERVICE_ACCOUNT worker service account e-mail (default: the Compute Engine default)
#   MACHINE_TYPE    worker machine type (default: n2-highmem-4)
#   MAX_WORKERS     autoscaling ceiling (default: 10)
#   SUBNETWORK      e.g. regions/REGION/subnetworks/NAME; with NO_PUBLIC_IPS=1 for private workers
#   DRY_RUN=1       print the docker and gcloud commands instead of running them
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

usage() {
  # The header comment above is the usage text.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

need() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || { echo "launch.sh: set $name" >&2; exit 2; }
  done
}

run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# Versions come from pyproject.toml, so the image tag follows a Beam bump.
pyproject_value() {
  sed -n "$1" "$root/pyproject.toml" | head -n 1
}
version="$(pyproject_value 's/^version = "\([^"]*\)".*/\1/p')"
beam="$(pyproject_value 's/.*"apache-beam==\([^"]*\)".*/\1/p')"
[[ -n "$version" && -n "$beam" ]] || { echo "launch.sh: cannot read versions from pyproject.toml" >&2; exit 2; }
tag="${version}-beam${beam}"

defaults() {
  need PROJECT REGION BUCKET
  REPOSITORY="${REPOSITORY:-distill-radar}"
  IMAGE="${IMAGE:-${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}/distill-radar:${tag}}"
  TEMPLATE="${TEMPLATE:-${BUCKET%/}/templates/distill-radar-${tag}.json}"
}

build_template() {
  defaults
  run docker build -f "$here/Dockerfile" -t "$IMAGE" "$root"
  run docker push "$IMAGE"
  run gcloud dataflow flex-template build "$TEMPLATE" \
    --image="$IMAGE" --sdk-language=PYTHON \
    --metadata-file="$here/metadata.json" --project="$PROJECT"
}

# One --parameters per value, with gcloud's ^~^ delimiter escape so that a
# value holding commas (--link-columns=a,b) stays one value.
param() {
  printf -- '--parameters=^~^%s=%s' "$1" "$2"
}

launch() {
  local command="$1" input="$2" output="$3"
  shift 3
  defaults
  local bucket="${BUCKET%/}"
  local args=(
    gcloud dataflow flex-template run "distill-radar-${command}-$(date -u +%Y%m%d-%H%M%S)"
    --template-file-gcs-location="$TEMPLATE"
    --project="$PROJECT" --region="$REGION"
    --staging-location="$bucket/staging" --temp-location="$bucket/temp"
    --worker-machine-type="${MACHINE_TYPE:-n2-highmem-4}"
    --max-workers="${MAX_WORKERS:-10}"
    # One SDK process per worker VM: numba's parallel kernels use every core,
    # and the stages that gather onto one worker get the whole VM's memory.
    --additional-experiments=no_use_multiple_sdk_containers
    "$(param command "$command")" "$(param input "$input")" "$(param output "$output")"
    # Workers run the same image as the launcher.
    "$(param sdk_container_image "$IMAGE")"
  )
  [[ -n "${SERVICE_ACCOUNT:-}" ]] && args+=(--service-account-email="$SERVICE_ACCOUNT")
  [[ -n "${SUBNETWORK:-}" ]] && args+=(--subnetwork="$SUBNETWORK")
  [[ "${NO_PUBLIC_IPS:-0}" == 1 ]] && args+=(--disable-public-ips)
  [[ "$command" == stream ]] && args+=(--enable-streaming-engine)

  local flag name value
  while (($#)); do
    flag="$1"
    shift
    [[ "$flag" == --?* ]] || { echo "launch.sh: expected --flag or --flag=value, got '$flag'" >&2; exit 2; }
    name="${flag%%=*}"
    if [[ "$flag" == *=* ]]; then
      value="${flag#*=}"
    elif (($#)) && [[ "$1" != --* ]]; then
      value="$1"
      shift
    else
      value=true # an on/off flag (--csv); main.py turns csv=true back into --csv
    fi
    name="${name#--}"
    args+=("$(param "${name//-/_}" "$value")")
  done
  run "${args[@]}"
}

case "${1:-}" in
  template) build_template ;;
  batch | stream)
    (($# >= 3)) || usage
    launch "$@"
    ;;
  *) usage ;;
esac
