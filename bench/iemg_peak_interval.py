"""Peak interval and half-width of a single-fibre potential against the IAP length, the CV and
the distance (docs/iemg.md, "Peak interval"): the finite-volume line-source model of
forward/needle/line_source.hpp (sealed ends, infinite anisotropic medium, sigma_l 0.33,
sigma_t 0.063 S/m) re-implemented with numpy: one wave from the end-plate to a sealed end 60 mm
away, the contact 20 mm from the end-plate at radial distance r, 100 kHz.
Usage: /usr/bin/python3 bench/iemg_peak_interval.py"""
import numpy as np
sl, st = 0.33, 0.063
def sfap(lam, v, r, fs=100e3, L=60e-3, z0=20e-3, dz=10e-6):
    z = np.arange(dz/2, L, dz)           # fibre from the end-plate (z=0) to a sealed end at L
    t = np.arange(0, (z0+8e-3)/v, 1/fs)
    u = (v*t[:,None] - z[None,:])/lam    # behind the wave front, in lambda
    D = np.where(u>0, 96e-3*np.clip(u,0,None)**3*np.exp(-np.clip(u,0,None)), 0.0)
    # second difference with sealed ends: element currents
    I = np.zeros_like(D)
    I[:,1:] += D[:,:-1]-D[:,1:]
    I[:,:-1] += D[:,1:]-D[:,:-1]
    T = 1.0/np.sqrt(r*r/st + (z-z0)**2/sl)
    return t, I@T
def feats(t, p):
    i_max, i_min = p.argmax(), p.argmin()
    interval = abs(t[i_max]-t[i_min])
    m = i_max if abs(p[i_max])>=abs(p[i_min]) else i_min
    s = np.sign(p[m]); half = 0.5*abs(p[m])
    a=m
    while a>0 and s*p[a-1]>=half: a-=1
    b=m
    while b+1<len(p) and s*p[b+1]>=half: b+=1
    return interval*1e3, (b-a)/ (1/(t[1]-t[0])) *1e3, 'neg' if s<0 else 'pos'
print("lambda_mm v r_mm interval_ms halfwidth_ms main")
for lam in [0.5e-3, 0.75e-3, 1e-3]:
    for v in [3.0, 4.0, 5.0]:
        for r in [0.05e-3, 0.1e-3, 0.2e-3, 0.3e-3, 0.5e-3, 1e-3]:
            t,p = sfap(lam, v, r)
            iv, hw, main = feats(t,p)
            print(f"{lam*1e3:.2f} {v:.0f} {r*1e3:.2f} {iv:.3f} {hw:.3f} {main}")
