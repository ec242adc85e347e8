export { Replica, createReplica, type ReplicaFootprint, type ReplicaStatus } from './replica.ts'
export { planNewView, type NewViewPlan, type PlannedReproposal } from './newView.ts'
export type { Input, Output, TimerId } from './types.ts'
