package org.i2vadapter.core;

import java.util.Map;

/** The training noise schedule ({@code i2v_core.config.SchedulerConfig}); the manifest's {@code scheduler} entry. */
public final class SchedulerConfig {
    public final int numTrainTimesteps;
    public final double betaStart;
    public final double betaEnd;
    public final String betaSchedule;
    public final int stepsOffset;
    public final boolean clipSample;
    public final boolean setAlphaToOne;
    public final String predictionType;

    public SchedulerConfig(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            int stepsOffset, boolean clipSample, boolean setAlphaToOne, String predictionType) {
        this.numTrainTimesteps = numTrainTimesteps;
        this.betaStart = betaStart;
        this.betaEnd = betaEnd;
        this.betaSchedule = betaSchedule;
        this.stepsOffset = stepsOffset;
        this.clipSample = clipSample;
        this.setAlphaToOne = setAlphaToOne;
        this.predictionType = predictionType;
    }

    /** AnimateDiff's inference schedule: 1000 steps, linear betas 0.00085 to 0.012, offset 1. */
    public static SchedulerConfig defaults() {
        return new SchedulerConfig(1000, 0.00085, 0.012, "linear", 1, false, true, "epsilon");
    }

    /** Read from the manifest's {@code scheduler} object; absent keys take the defaults. */
    public static SchedulerConfig fromJson(Map<String, Object> m) {
        SchedulerConfig d = defaults();
        return new SchedulerConfig(
                m.containsKey("num_train_timesteps") ? Json.integer(m.get("num_train_timesteps"), "scheduler.num_train_timesteps") : d.numTrainTimesteps,
                m.containsKey("beta_start") ? Json.number(m.get("beta_start"), "scheduler.beta_start") : d.betaStart,
                m.containsKey("beta_end") ? Json.number(m.get("beta_end"), "scheduler.beta_end") : d.betaEnd,
                m.containsKey("beta_schedule") ? Json.string(m.get("beta_schedule"), "scheduler.beta_schedule") : d.betaSchedule,
                m.containsKey("steps_offset") ? Json.integer(m.get("steps_offset"), "scheduler.steps_offset") : d.stepsOffset,
                m.containsKey("clip_sample") ? Json.bool(m.get("clip_sample"), "scheduler.clip_sample") : d.clipSample,
                m.containsKey("set_alpha_to_one") ? Json.bool(m.get("set_alpha_to_one"), "scheduler.set_alpha_to_one") : d.setAlphaToOne,
                m.containsKey("prediction_type") ? Json.string(m.get("prediction_type"), "scheduler.prediction_type") : d.predictionType);
    }

    /** A copy with another prediction type ({@code epsilon} or {@code v_prediction}). */
    public SchedulerConfig withPredictionType(String type) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, betaSchedule, stepsOffset, clipSample,
                setAlphaToOne, type);
    }

    /** A copy with another beta schedule ({@code linear} or {@code scaled_linear}). */
    public SchedulerConfig withBetaSchedule(String schedule) {
        return new SchedulerConfig(numTrainTimesteps, betaStart, betaEnd, schedule, stepsOffset, clipSample,
                setAlphaToOne, predictionType);
    }
}
