# |L_k - L_K| per iteration (log scale) with the fitted c * rho^k. Called by
# convergence.sh with data, out, rho, c, k0, k1 set.
set terminal pngcairo size 900,600 font ",11"
set output out
set datafile separator ","
set datafile columnheaders
set logscale y
set format y "10^{%L}"
set xlabel "iteration k"
set ylabel "|L_k - L_K|"
set grid
set key top right
set title "Proximal two-splitting RADMM (beta = 10, tanh, teacher data): augmented Lagrangian's distance to its final value"
set arrow 1 from k0, graph 0 to k0, graph 1 nohead dt 3 lc rgb "gray"
set arrow 2 from k1, graph 0 to k1, graph 1 nohead dt 3 lc rgb "gray"
plot data using 1:3 with lines lw 2 lc rgb "#1f77b4" title "|L_k - L_K|", \
     data using 1:(($1 >= k0 && $1 <= k1) ? $4 : NaN) with lines lw 2 dt 2 lc rgb "#d62728" \
       title sprintf("fit %.3g x %.4f^k (k in [%d, %d])", c, rho, k0, k1)
