#!/usr/bin/env bash
# The main job on the embedded default: merge the shipped example adapters on SmolLM2 with TaDA.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
tada demo "$@"
