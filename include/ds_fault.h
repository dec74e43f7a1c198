// Fault injection for the fault scenarios (tests/faults/): inert unless DS_FAULT is set.
//
//   DS_FAULT = POINT[=TEXT][@RANK][#N][:ACTION]
//
//   POINT   where the fault happens (each is named where ds_fault is called):
//             train-step    after a training step's update      (TEXT: none)
//             epoch-end     after an epoch's checkpoint is saved
//             soft-labels   after a batch of soft labels
//             attack-batch  after an attack's batch of gradients
//             h5-write      an HDF5 file fully written to FILE.tmp, before its flush and sync
//             h5-commit     an HDF5 file renamed into place, before anyone records it
//             journal       before a task's line is appended to tasks/done.log
//             journaled     after that line is on disk
//             task-start    a worker received a task and has not started it (TEXT: the task id)
//             reduce-output between two of the reducer's outputs being moved into place
//   TEXT    only where the file name (or task id) contains TEXT
//   RANK    only on this MPI rank (OMPI_COMM_WORLD_RANK, PMI_RANK or PMIX_RANK; default: any)
//   N       the Nth time this process passes a matching point (default: the first)
//   ACTION  kill: SIGKILL the process (default); enospc: the operation fails as on a full disk;
//           hang: the thread stops there for good, the process staying alive (a gang member
//           that never answers)
//
// ds_fault(point, text) kills the process itself for "kill" and returns 1 for "enospc" (the
// caller then fails with ENOSPC through its normal error path), else 0.
#ifndef DS_FAULT_H
#define DS_FAULT_H

int ds_fault(const char *point, const char *text);

#endif
