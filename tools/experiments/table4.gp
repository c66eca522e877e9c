# Table IV: serial and parallel runtime against width, error bars = std, one
# line per (layers, mode). Called by table4.sh with data, out, iters set.
# runtime.csv columns: layers,d,mode,mean_s,std_s,n,wall_mean_s
set terminal pngcairo size 900,600 font ",11"
set output out
set datafile separator ","
set datafile columnheaders
set xlabel "width d"
set ylabel sprintf("seconds for %s iterations", iters)
set logscale xy
set autoscale xfix
set offsets graph 0.08, graph 0.08, 0, 0
set grid
set key top left
set title "Serial vs parallel (one process per layer) RADMM, oscillating function, 10 samples"
sel(L, m) = (column(1) == L && strcol(3) eq m)
plot data using (sel(5, "none") ? $2 : NaN):4:5 with yerrorlines lw 2 lc rgb "#1f77b4" title "N = 5, serial", \
     data using (sel(5, "shm") ? $2 : NaN):4:5 with yerrorlines lw 2 lc rgb "#d62728" title "N = 5, parallel (shm)", \
     data using (sel(8, "none") ? $2 : NaN):4:5 with yerrorbars pt 7 ps 1.5 lc rgb "#1f77b4" title "N = 8, serial", \
     data using (sel(8, "shm") ? $2 : NaN):4:5 with yerrorbars pt 9 ps 1.5 lc rgb "#d62728" title "N = 8, parallel (shm)"
