package org.i2vadapter.core;

import java.util.concurrent.atomic.AtomicBoolean;

/** Set from any thread (the UI's cancel button); the pipeline checks it before every stage call and step. */
public final class CancellationSignal {
    /** Thrown by the pipeline when its signal was cancelled. */
    public static final class CancelledException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public CancelledException(String where) {
            super("generation cancelled " + where);
        }
    }

    private final AtomicBoolean cancelled = new AtomicBoolean();

    public void cancel() {
        cancelled.set(true);
    }

    public boolean isCancelled() {
        return cancelled.get();
    }

    public void throwIfCancelled(String where) {
        if (cancelled.get()) {
            throw new CancelledException(where);
        }
    }
}
