/**
 * The "background tasks in Edge Functions" guide's own design (shared/seed/000_cea130a7ef722a0e.txt),
 * ported to plain TypeScript for the benchmark: its `TaskQueue`, `TaskManager`, `withRetry`,
 * `TaskMetrics` and `ResourceAwareTask`, with the guide's logic kept as written. Supabase calls
 * (`ErrorReporter`, `TaskMetrics.report`) are left out: no task fails and nothing is flushed.
 *
 * How the pieces are composed (the guide never shows it, so this is our reading of it):
 *
 * - `submit` creates the task in the `TaskManager` (`pending`) and adds a job to the `TaskQueue`;
 * - the queue's job hands the work to `ResourceAwareTask.execute` without awaiting it (awaiting it
 *   would make the queue run one task at a time, and `MAX_CONCURRENT` would never bind);
 * - the work runs inside `ResourceAwareTask` (waiting by polling every 100 ms while
 *   `MAX_CONCURRENT` tasks run), marked `processing`, wrapped in the guide's `withRetry`
 *   (3 attempts, 1 s doubling), then marked `completed` (or `failed`) and counted in `TaskMetrics`.
 *
 * `settled` / `whenIdle` are the benchmark's addition: the guide has no way to wait for the end.
 */

/** The guide's `TaskQueue`, as written: it runs its jobs one after another. */
export class TaskQueue {
  private queue: Array<() => Promise<void>> = []
  private processing = false

  async add(task: () => Promise<void>) {
    this.queue.push(task)
    if (!this.processing) {
      await this.process()
    }
  }

  private async process() {
    this.processing = true
    while (this.queue.length > 0) {
      const task = this.queue.shift()!
      try {
        await task()
      } catch (error) {
        console.error("Task failed:", error)
      }
    }
    this.processing = false
  }
}

/** The guide's `TaskStatus` record. */
export interface TaskStatus {
  id: string
  status: "pending" | "processing" | "completed" | "failed"
  progress?: number
  error?: string
  result?: any // the guide's own type, kept as written
}

/** The guide's `TaskManager`: a `Map` of statuses. */
export class TaskManager {
  private tasks = new Map<string, TaskStatus>()

  createTask(id: string): TaskStatus {
    const task: TaskStatus = {
      id,
      status: "pending"
    }
    this.tasks.set(id, task)
    return task
  }

  updateTask(id: string, update: Partial<TaskStatus>) {
    const task = this.tasks.get(id)
    if (task) {
      Object.assign(task, update)
    }
  }

  getTask(id: string): TaskStatus | undefined {
    return this.tasks.get(id)
  }

  /** Benchmark addition: how many tasks are in each status. */
  countByStatus(): Record<TaskStatus["status"], number> {
    const counts = { pending: 0, processing: 0, completed: 0, failed: 0 }
    for (const task of this.tasks.values()) counts[task.status]++
    return counts
  }
}

/** The guide's `withRetry`, as written. */
export async function withRetry<T>(operation: () => Promise<T>, maxRetries = 3, delay = 1000): Promise<T> {
  let lastError: Error | undefined

  for (let i = 0; i < maxRetries; i++) {
    try {
      return await operation()
    } catch (error) {
      lastError = error as Error
      if (i < maxRetries - 1) {
        await new Promise((resolve) => setTimeout(resolve, delay * Math.pow(2, i)))
      }
    }
  }

  throw lastError
}

/** The guide's `TaskMetrics`, without its Supabase `report`. */
export class TaskMetrics {
  private metrics = new Map<string, number>()

  increment(metric: string, value = 1) {
    const current = this.metrics.get(metric) ?? 0
    this.metrics.set(metric, current + value)
  }

  get(metric: string): number {
    return this.metrics.get(metric) ?? 0
  }
}

/**
 * The guide's `ResourceAwareTask`: static state as written; `MAX_CONCURRENT` is public so that
 * each run can set it to its concurrency (the guide has 5).
 */
export class ResourceAwareTask {
  static activeTasks = 0
  static MAX_CONCURRENT = 5

  static async execute(task: () => Promise<void>) {
    while (this.activeTasks >= this.MAX_CONCURRENT) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }

    this.activeTasks++
    try {
      await task()
    } finally {
      this.activeTasks--
    }
  }
}

/** The guide's pieces wired together for one benchmark run. */
export class GuideEngine {
  readonly queue = new TaskQueue()
  readonly manager = new TaskManager()
  readonly metrics = new TaskMetrics()
  private submitted = 0
  private settled = 0
  private idle: (() => void) | undefined

  constructor(maxConcurrent: number) {
    ResourceAwareTask.activeTasks = 0
    ResourceAwareTask.MAX_CONCURRENT = maxConcurrent
  }

  private run(id: string, work: () => Promise<void>): Promise<void> {
    return ResourceAwareTask.execute(async () => {
      this.manager.updateTask(id, { status: "processing" })
      try {
        await withRetry(work)
        this.manager.updateTask(id, { status: "completed", progress: 100 })
        this.metrics.increment("tasks_completed")
      } catch (error) {
        this.manager.updateTask(id, { status: "failed", error: (error as Error).message })
        this.metrics.increment("tasks_failed")
      } finally {
        this.settled++
        if (this.settled === this.submitted && this.idle !== undefined) this.idle()
      }
    })
  }

  /** Queues a task; `ResourceAwareTask` bounds how many run at once. */
  submit(id: string, work: () => Promise<void>): void {
    this.manager.createTask(id)
    this.submitted++
    void this.queue.add(async () => {
      void this.run(id, work)
    })
  }

  /** Resolves once every submitted task has settled. */
  whenIdle(): Promise<void> {
    if (this.settled === this.submitted) return Promise.resolve()
    return new Promise((resolve) => {
      this.idle = resolve
    })
  }
}
