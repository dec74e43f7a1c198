#!/usr/bin/env bash
# The quick fault scenario in 'make check': NaN in training (tests/faults/fault_nan.sh). The
# others run in 'make check-faults'.
exec bash "$(dirname "$0")/faults/fault_nan.sh"
