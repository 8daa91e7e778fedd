package org.i2vadapter.core;

/** A bundle is missing, malformed, or its files do not match its manifest (as Python's {@code BundleError}). */
public class BundleException extends Exception {
    private static final long serialVersionUID = 1L;

    public BundleException(String message) {
        super(message);
    }

    public BundleException(String message, Throwable cause) {
        super(message, cause);
    }
}
